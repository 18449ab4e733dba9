/* cpu.h — cpu_relax(): the spin-wait hint of this CPU (x86 PAUSE, arm64
 * YIELD, nothing elsewhere), for the short spins before a futex sleep. */
#ifndef FORQ_CPU_H
#define FORQ_CPU_H

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
