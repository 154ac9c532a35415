// Console module: the PUTS hypercall (docs/abi.md §10.2). In every monitor;
// where the bytes go is the composing program's choice (ModuleEnv.output):
// the CLI's stdout (fd-output.ts), or the library's caller.
import { Hypercall } from '../../monitor/abi/constants.js';
import { PUTS_ARGS } from '../../monitor/abi/layouts.js';
import type { ModuleDescriptor } from '../../monitor/module.js';
import { fdOutput } from './fd-output.js';

export const consoleModule: ModuleDescriptor = {
  name: 'console',
  serves: [],
  always: true,
  cli: { usage: [] },
  library: [],
  create(_options, env) {
    const output = env.output ?? fdOutput(env.host, 1);
    return {
      name: 'console',
      setup(ctx) {
        const memory = ctx.memory;
        const run = ctx.run;
        ctx.hypercall(Hypercall.PUTS, (gpa) => {
          const bytes = memory.struct(gpa, PUTS_ARGS, 'read').buffer('data', 'len', 'read');
          if (bytes.length !== 0) output(bytes, run);
        });
      },
    };
  },
};
export default consoleModule;
