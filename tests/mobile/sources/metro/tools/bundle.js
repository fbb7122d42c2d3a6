// Bundles the app as `react-native bundle --platform android --dev false` does for a
// release build: React Native's Metro config (its Babel transformer and preset, its JS
// polyfills), minified, with a separate source map whose x_facebook_sources carries the
// function map Metro generates for every module.
//
// usage: node bundle.js PROJECT_ROOT NODE_MODULES BUNDLE_OUT MAP_OUT
'use strict';

const path = require('path');
const Metro = require('metro');
const {getDefaultConfig, mergeConfig} = require('@react-native/metro-config');

async function main() {
  const [projectRoot, nodeModules, bundleOut, sourceMapOut] = process.argv.slice(2);
  const config = mergeConfig(getDefaultConfig(projectRoot), {
    // Metro only bundles files it has crawled, and crawls only the watch folders (the CLI's
    // config loader puts the project root first); the polyfills and the module runtime
    // live in the npm prefix, outside the project.
    watchFolders: [projectRoot, nodeModules],
    // Babel's class transform imports its helpers from @babel/runtime, which an app has in
    // its own node_modules; here it is in the npm prefix.
    resolver: {useWatchman: false, nodeModulesPaths: [nodeModules]},
    // React Native runs InitializeCore first; there is no react-native package here, and
    // the app needs none of it.
    serializer: {getModulesRunBeforeMainModule: () => []},
    // Nothing shared in the system temp folder: no transform cache (every build transforms
    // anew), and the crawl's cache beside the bundle.
    cacheStores: [],
    fileMapCacheDirectory: path.dirname(bundleOut),
    maxWorkers: 1,
    reporter: {update() {}},
  });
  await Metro.runBuild(config, {
    entry: 'index.js',
    platform: 'android',
    dev: false,
    minify: true,
    sourceMap: true,
    // A URL keeps the map out of the bundle (runBuild inlines it without one).
    sourceMapUrl: 'index.android.bundle.map',
    bundleOut,
    sourceMapOut,
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
