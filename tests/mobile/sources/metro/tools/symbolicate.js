// The reference answer for each Hermes frame: metro-symbolicate, React Native's own
// symbolicator, on the composed map. Frames are given as Hermes records them in a crash
// (function index and bytecode offset inside it) and go through its Hermes crash path,
// which adds the function's x_hermes_function_offsets entry itself; the same position is
// also asked as a stack trace's line 1 / column = virtual offset, and both must agree.
//
// usage: node symbolicate.js COMPOSED_MAP '[{"FunctionID": n, "ByteCodeOffset": n, "column": n}, ...]'
'use strict';

const fs = require('fs');
const {SourceMapConsumer} = require('source-map');
const Symbolication = require('metro-symbolicate/private/Symbolication');

const [mapPath, framesJson] = process.argv.slice(2);
const frames = JSON.parse(framesJson);
const context = Symbolication.createContext(SourceMapConsumer, fs.readFileSync(mapPath, 'utf8'));
const callstack = frames.map(({FunctionID, ByteCodeOffset}) => ({
  CJSModuleOffset: 0,
  SourceURL: 'index.android.bundle',
  FunctionID,
  ByteCodeOffset,
}));
const answers = context.symbolicateHermesMinidumpTrace({callstack});
frames.forEach((frame, i) => {
  const direct = context.getOriginalPositionDetailsFor(1, frame.column);
  for (const key of ['source', 'line', 'column', 'functionName']) {
    if (direct[key] !== answers[i][key]) {
      throw new Error(`frame ${i}: ${key} ${direct[key]} at column ${frame.column}, ${answers[i][key]} by function`);
    }
  }
});
process.stdout.write(JSON.stringify(answers));
