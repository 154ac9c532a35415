/*
 * Entry point of every test unikernel. The tender enters here in 64-bit mode
 * with RDI = 0x10000 (boot info), RSP = mem_size - 8, RFLAGS = 0x2 and every
 * other general register zero (docs/abi.md §7.4, §19.2). The registers are recorded
 * in hvt_entry_regs (for the state guest) before anything changes them; then
 * the stack is aligned for a C call and hvt_runtime_start, which never
 * returns, takes over.
 */
	.section .text.start, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	movq %rax, hvt_entry_regs+0(%rip)
	movq %rbx, hvt_entry_regs+8(%rip)
	movq %rcx, hvt_entry_regs+16(%rip)
	movq %rdx, hvt_entry_regs+24(%rip)
	movq %rsi, hvt_entry_regs+32(%rip)
	movq %rdi, hvt_entry_regs+40(%rip)
	movq %rbp, hvt_entry_regs+48(%rip)
	movq %rsp, hvt_entry_regs+56(%rip)
	movq %r8, hvt_entry_regs+64(%rip)
	movq %r9, hvt_entry_regs+72(%rip)
	movq %r10, hvt_entry_regs+80(%rip)
	movq %r11, hvt_entry_regs+88(%rip)
	movq %r12, hvt_entry_regs+96(%rip)
	movq %r13, hvt_entry_regs+104(%rip)
	movq %r14, hvt_entry_regs+112(%rip)
	movq %r15, hvt_entry_regs+120(%rip)
	pushfq
	popq %rax
	movq %rax, hvt_entry_regs+128(%rip)
	xorl %ebp, %ebp
	andq $-16, %rsp
	call hvt_runtime_start
1:	ud2
	jmp 1b
	.size _start, . - _start

/* The ABI note (docs/abi.md §3.4): its own PT_NOTE, placed by the linker script. */
	.section .note.solo5.abi, "a", @note
	.balign 4
	.long 6			/* namesz: "Solo5\0" */
	.long 16		/* descsz */
	.long 0x31494241	/* type "ABI1" */
	.asciz "Solo5"
	.balign 4		/* name padded to 8 bytes */
	.long 1			/* target: hvt */
	.long 2			/* ABI version */
	.long 0, 0		/* reserved */

	.section .note.GNU-stack, "", @progbits
