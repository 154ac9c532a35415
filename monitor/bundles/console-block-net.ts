// Bundle entry for generated monitors with the modules: console, block, net.
// The build bundles it into dist/bundles/console-block-net.mjs (see package.json build:ts).
export { main } from '../cli/main.js';
export { console } from '../../modules/console/index.js';
export { block } from '../../modules/block/index.js';
export { net } from '../../modules/net/index.js';
