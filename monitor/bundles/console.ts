// Bundle entry for generated monitors with the modules: console.
// The build bundles it into dist/bundles/console.mjs (see package.json build:ts).
export { main } from '../cli/main.js';
export { console } from '../../modules/console/index.js';
