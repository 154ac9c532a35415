// Bundle entry for generated monitors with the modules: console, block.
// The build bundles it into dist/bundles/console-block.mjs (see package.json build:ts).
export { main } from '../cli/main.js';
export { console } from '../../modules/console/index.js';
export { block } from '../../modules/block/index.js';
