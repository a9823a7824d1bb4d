// Entry and output only: vit-wasm needs no loader, plugin or asset rule.
const path = require('node:path');

module.exports = {
  entry: './src/index.js',
  output: { path: path.resolve(__dirname, 'dist'), filename: 'main.js' },
};
