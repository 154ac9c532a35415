// Bundle entry for generated monitors with the modules: console, net.
// The build bundles it into dist/bundles/console-net.mjs (see package.json build:ts).
export { main } from '../cli/main.js';
export { console } from '../../modules/console/index.js';
export { net } from '../../modules/net/index.js';
