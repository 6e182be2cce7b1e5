/*
 * cpumask.so: run a program as if this x86-64 CPU lacked AVX-512 and/or VNNI, to reproduce
 * onnxruntime's AVX2-only int8 kernels (issue #14) on a machine that has them.
 *
 * How: Linux CPUID faulting (arch_prctl ARCH_SET_CPUID, /proc/cpuinfo flag cpuid_fault) makes
 * every CPUID instruction of the process raise SIGSEGV; the handler below executes the real
 * CPUID with faulting briefly off, clears the feature bits of the chosen mode and resumes after
 * the instruction. onnxruntime's MLAS picks its int8 kernels from CPUID at load, so it then
 * dispatches the AVX2 (vpmaddubsw) or AVX-512BW kernels. The setting is per thread and inherited
 * by the threads created later (onnxruntime's pool, Node's workers).
 *
 * Node resets every signal handler at start-up and installs its own SIGSEGV handler (WebAssembly
 * traps), so sigaction() is interposed for SIGSEGV: the program's handler is remembered and
 * called for every fault that is not a CPUID, and the program is told it is installed.
 *
 * CPUMASK=avx2    no AVX-512, no VNNI, no AMX (an AVX2 machine such as AMD EPYC Zen 2)
 * CPUMASK=avx512  AVX-512 without VNNI or AMX (Skylake-SP / Cascade Lake without VNNI)
 * CPUMASK=none    nothing cleared (the shim's own overhead)
 * Build and run with scripts/cpu-mask/run.sh; x86-64 Linux only.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static struct sigaction app_segv; /* what the program believes is installed */
static int mode;                  /* 0 none, 1 avx2, 2 avx512 */
static int active;

static long cpuid_faulting(int on) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
  (void)a; (void)b;
  if (leaf != 7 || mode == 0) return;
  if (sub == 0) {
    *c &= ~(1u << 11);                                      /* AVX512_VNNI */
    *d &= ~((1u << 22) | (1u << 24) | (1u << 25));          /* AMX_BF16, AMX_TILE, AMX_INT8 */
    if (mode == 1) {
      *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
      *c &= ~((1u << 1) | (1u << 6) | (1u << 12) | (1u << 14)); /* VBMI, VBMI2, BITALG, VPOPCNTDQ */
      *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23));  /* 4VNNIW, 4FMAPS, VP2INTERSECT, FP16 */
    }
  } else if (sub == 1) {
    *a &= ~((1u << 4) | (1u << 23));                         /* AVX_VNNI, AVX_IFMA */
    *d &= ~((1u << 4) | (1u << 5) | (1u << 10));             /* AVX_VNNI_INT8, AVX_NE_CONVERT, AVX_VNNI_INT16 */
    if (mode == 1) *a &= ~(1u << 5);                         /* AVX512_BF16 */
  }
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
  ucontext_t *uc = ctx;
  greg_t *r = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)r[REG_RIP];
  if (si->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
    unsigned a, b, c, d, leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX];
    cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    cpuid_faulting(1);
    mask(leaf, sub, &a, &b, &c, &d);
    r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d;
    r[REG_RIP] += 2;
    return;
  }
  if ((app_segv.sa_flags & SA_SIGINFO) && app_segv.sa_sigaction) { app_segv.sa_sigaction(sig, si, ctx); return; }
  if (app_segv.sa_handler != SIG_DFL && app_segv.sa_handler != SIG_IGN) { app_segv.sa_handler(sig); return; }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  real_sigaction(SIGSEGV, &dfl, NULL); /* return: the fault repeats and kills the process as it would have */
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  if (sig != SIGSEGV || !active) return real_sigaction(sig, act, old);
  if (old) *old = app_segv;
  if (act) app_segv = *act;
  return 0;
}

__attribute__((constructor)) static void init(void) {
  const char *m = getenv("CPUMASK");
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  mode = !m || !strcmp(m, "avx2") ? 1 : !strcmp(m, "avx512") ? 2 : !strcmp(m, "none") ? 0 : -1;
  if (mode < 0) { fprintf(stderr, "cpumask: CPUMASK must be avx2, avx512 or none, got '%s'\n", m); _exit(2); }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (real_sigaction(SIGSEGV, &sa, NULL) || cpuid_faulting(1)) {
    fprintf(stderr, "cpumask: this kernel or CPU has no CPUID faulting (flag cpuid_fault); cannot emulate\n");
    _exit(2);
  }
  active = 1;
}
