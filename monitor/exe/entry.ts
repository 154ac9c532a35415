// Entry point of the self-contained executable (dist/exe/ukvm-ts, made by
// `npm run build:exe`): the set-up first, then exactly the CLI of
// bin/ukvm-ts. ES modules run in import order, so setup.js has installed the
// addon provider before the CLI's first line runs. Inside a single-executable
// application process.argv[1] is the name the program was started by (Node
// repeats argv[0] there), so the links solo5-hvt and solo5-hvt-debug answer
// as themselves, as with bin/ukvm-ts.
import './setup.js';
import '../cli/entry.js';
