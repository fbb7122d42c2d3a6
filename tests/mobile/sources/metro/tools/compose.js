// Composes Metro's map with hermesc's, as react-native/scripts/compose-source-maps.js does
// in a release build: metro-source-map's composeSourceMaps, packager map first.
//
// usage: node compose.js PACKAGER_MAP COMPILER_MAP OUT
'use strict';

const fs = require('fs');
const {composeSourceMaps} = require('metro-source-map');

const [packagerMap, compilerMap, out] = process.argv.slice(2);
const maps = [packagerMap, compilerMap].map((path) => JSON.parse(fs.readFileSync(path, 'utf8')));
fs.writeFileSync(out, JSON.stringify(composeSourceMaps(maps)));
