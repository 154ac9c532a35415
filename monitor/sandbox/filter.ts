// The policy table (policy.ts) as a seccomp-BPF program for one scope:
//
//   arch != x86_64                → kill      (another ABI's numbers mean other calls)
//   nr >= 0x40000000 (x32 ABI)    → kill
//   for each rule of the scope (and of a debugger, if one is attached), most frequent first:
//     nr == rule.nr, no argument rule → allow
//     nr == rule.nr, argument rule    → allow if it holds, else kill
//   nr in FAIL (open*, clone3)    → its errno (see policy.ts)
//   anything else                 → kill      (DEFAULT_ACTION)
//
// Every comparison jumps at most a block ahead, so the program has no long
// jumps whatever the table's size. A rule without an argument check never
// reads the arguments, so the kernel's per-call cache (Linux ≥ 5.11) allows
// those calls without running the program at all.
import { Assembler, argLow, encode, type Insn, RET, SECCOMP_DATA } from './bpf.js';
import { type ArgRule, AUDIT_ARCH_X86_64, DEFAULT_ACTION, FAIL, POLICY, type Rule, type Scope, X32_SYSCALL_BIT } from './policy.js';

/** Values only known when the filter is installed. */
export interface FilterContext {
  /** This process's id (the thread-group id every thread shares). */
  pid: number;
  /** A debugger is attached: the rules and values marked `debugger` apply too (policy.ts). */
  debugger?: boolean;
}

export function buildProgram(scope: Scope, ctx: FilterContext): Insn[] {
  const a = new Assembler();
  a.ld(SECCOMP_DATA.arch).jump('jeq', AUDIT_ARCH_X86_64, 1, 0).ret(DEFAULT_ACTION);
  a.ld(SECCOMP_DATA.nr).jump('jge', X32_SYSCALL_BIT, 0, 1).ret(DEFAULT_ACTION);
  const rules = (Object.entries(POLICY) as [string, Rule][])
    .filter(([, r]) => r.scopes.includes(scope) && (r.debugger !== true || ctx.debugger === true))
    .sort(([, x], [, y]) => (y.hot ? 1 : 0) - (x.hot ? 1 : 0));
  for (const [name, rule] of rules) {
    if (rule.args === undefined) {
      a.jump('jeq', rule.nr, 0, 1).ret(RET.ALLOW);
      continue;
    }
    const block = argBlock(name, rule.args, scope, ctx);
    a.jump('jeq', rule.nr, 0, block.length);
    // The block ends in returns on every path: the accumulator it leaves
    // (an argument) is never compared with a call number.
    for (const insn of block) a.raw(insn);
  }
  for (const f of Object.values(FAIL)) a.jump('jeq', f.nr, 0, 1).ret(RET.ERRNO | f.errno);
  a.ret(DEFAULT_ACTION);
  return a.assemble();
}

export function buildFilter(scope: Scope, ctx: FilterContext): Uint8Array {
  return encode(buildProgram(scope, ctx));
}

/**
 * The instructions after "nr == rule.nr": load the argument (its low 32 bits,
 * which is all the kernel reads of the arguments checked here, see ArgRule),
 * test it, and return allow or the default action. Assembled on its own so
 * that its length is known for the jump over it.
 */
function argBlock(name: string, rule: ArgRule, scope: Scope, ctx: FilterContext): Insn[] {
  const b = new Assembler();
  b.ld(argLow(rule.arg));
  switch (rule.kind) {
    case 'oneOf': {
      const values = rule.values.filter((v) => (v.scopes === undefined || v.scopes.includes(scope)) && (v.debugger !== true || ctx.debugger === true));
      if (values.length === 0) throw new Error(`${name}: no allowed values in scope ${scope}`);
      for (const v of values) b.jump('jeq', v.value, 'allow', 0);
      break;
    }
    case 'flags': {
      if (rule.clear) b.jump('jset', rule.clear, 'deny', 0);
      b.and(rule.set).jump('jeq', rule.set, 'allow', 'deny');
      break;
    }
    case 'ownPid':
      b.jump('jeq', ctx.pid, 'allow', 'deny');
      break;
  }
  b.label('deny').ret(DEFAULT_ACTION).label('allow').ret(RET.ALLOW);
  return b.assemble();
}
