/*
 * The C loop peer for fastbp's benchmark.
 *
 * Trains R independent runs of the SPEC's 2-2-2 sigmoid network (no biases, loss
 * 1/2 (t - a)^2 summed over the two outputs, plain gradient descent on one sample).
 *
 * Layout: structure of arrays.  w_init and w_out are (8, R) row-major, row k holding
 * weight w(k+1) of every run; lr is (R,).  Runs are processed in blocks of BLK: a block's
 * weights are copied into local arrays, all `steps` steps run over the block (the inner
 * loop over the block's runs vectorises, and with -ffast-math -fopenmp glibc's vector
 * exp/expf from libmvec is called), then one more forward pass gives E_total at the
 * final step.  OpenMP distributes the blocks over threads.
 *
 * Build:  gcc -O3 -march=native -ffast-math -fopenmp -shared -fPIC c_loop.c -o libc_loop.so -lm
 *
 * Each bp_train_* returns the seconds spent in the timed region (the thread team is
 * started before the clock starts).
 */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <omp.h>

#ifndef BLK
#define BLK 256
#endif

#define BP_STR2(x) #x
#define BP_STR(x) BP_STR2(x)

const char *bp_build_info(void)
{
    return "BLK=" BP_STR(BLK)
#if defined(__AVX512F__)
           ", AVX-512F"
#elif defined(__AVX2__)
           ", AVX2"
#endif
#if defined(__FAST_MATH__)
           ", fast-math"
#endif
           ;
}

/*
 * One block of n <= BLK runs starting at run j0.  T is the float type, EXP its exp.
 * All temporaries are per-run scalars inside the inner loop, so the loop body is a
 * straight line the compiler vectorises across runs.
 */
#define DEFINE_BLOCK(SUFFIX, T, EXP)                                                     \
static void train_block_##SUFFIX(const T *restrict w_init, const T *restrict lr_all,     \
                                 T *restrict w_out, T *restrict loss_out,                \
                                 ptrdiff_t R, ptrdiff_t j0, int n, long steps,           \
                                 T i1, T i2, T t1, T t2)                                 \
{                                                                                        \
    T w1[BLK], w2[BLK], w3[BLK], w4[BLK], w5[BLK], w6[BLK], w7[BLK], w8[BLK], lr[BLK];   \
    for (int j = 0; j < n; j++) {                                                        \
        w1[j] = w_init[0 * R + j0 + j]; w2[j] = w_init[1 * R + j0 + j];                  \
        w3[j] = w_init[2 * R + j0 + j]; w4[j] = w_init[3 * R + j0 + j];                  \
        w5[j] = w_init[4 * R + j0 + j]; w6[j] = w_init[5 * R + j0 + j];                  \
        w7[j] = w_init[6 * R + j0 + j]; w8[j] = w_init[7 * R + j0 + j];                  \
        lr[j] = lr_all[j0 + j];                                                          \
    }                                                                                    \
    const T one = (T)1;                                                                  \
    for (long s = 0; s < steps; s++) {                                                   \
        for (int j = 0; j < n; j++) {                                                    \
            /* forward */                                                                \
            T h1 = w1[j] * i1 + w2[j] * i2;                                              \
            T h2 = w3[j] * i1 + w4[j] * i2;                                              \
            T a_h1 = one / (one + EXP(-h1));                                             \
            T a_h2 = one / (one + EXP(-h2));                                             \
            T o1 = w5[j] * a_h1 + w6[j] * a_h2;                                          \
            T o2 = w7[j] * a_h1 + w8[j] * a_h2;                                          \
            T a_o1 = one / (one + EXP(-o1));                                             \
            T a_o2 = one / (one + EXP(-o2));                                             \
            /* backward: delta_o = (a_o - t) a_o (1 - a_o) */                            \
            T d_o1 = (a_o1 - t1) * a_o1 * (one - a_o1);                                  \
            T d_o2 = (a_o2 - t2) * a_o2 * (one - a_o2);                                  \
            /* delta_h = dE/da_h * a_h (1 - a_h), with the old w5..w8 */                 \
            T d_h1 = (d_o1 * w5[j] + d_o2 * w7[j]) * a_h1 * (one - a_h1);                \
            T d_h2 = (d_o1 * w6[j] + d_o2 * w8[j]) * a_h2 * (one - a_h2);                \
            T r = lr[j];                                                                 \
            w5[j] -= r * (d_o1 * a_h1);                                                  \
            w6[j] -= r * (d_o1 * a_h2);                                                  \
            w7[j] -= r * (d_o2 * a_h1);                                                  \
            w8[j] -= r * (d_o2 * a_h2);                                                  \
            w1[j] -= r * (d_h1 * i1);                                                    \
            w2[j] -= r * (d_h1 * i2);                                                    \
            w3[j] -= r * (d_h2 * i1);                                                    \
            w4[j] -= r * (d_h2 * i2);                                                    \
        }                                                                                \
    }                                                                                    \
    for (int j = 0; j < n; j++) {                                                        \
        T a_h1 = one / (one + EXP(-(w1[j] * i1 + w2[j] * i2)));                          \
        T a_h2 = one / (one + EXP(-(w3[j] * i1 + w4[j] * i2)));                          \
        T a_o1 = one / (one + EXP(-(w5[j] * a_h1 + w6[j] * a_h2)));                      \
        T a_o2 = one / (one + EXP(-(w7[j] * a_h1 + w8[j] * a_h2)));                      \
        T e1 = t1 - a_o1, e2 = t2 - a_o2;                                                \
        loss_out[j0 + j] = (T)0.5 * e1 * e1 + (T)0.5 * e2 * e2;                          \
        w_out[0 * R + j0 + j] = w1[j]; w_out[1 * R + j0 + j] = w2[j];                    \
        w_out[2 * R + j0 + j] = w3[j]; w_out[3 * R + j0 + j] = w4[j];                    \
        w_out[4 * R + j0 + j] = w5[j]; w_out[5 * R + j0 + j] = w6[j];                    \
        w_out[6 * R + j0 + j] = w7[j]; w_out[7 * R + j0 + j] = w8[j];                    \
    }                                                                                    \
}                                                                                        \
                                                                                         \
double bp_train_##SUFFIX(const T *w_init, const T *lr, T *w_out, T *loss_out,            \
                         long R, long steps, const T *io, int nthreads)                  \
{                                                                                        \
    /* io = {i1, i2, t1, t2} */                                                          \
    const T i1 = io[0], i2 = io[1], t1 = io[2], t2 = io[3];                              \
    if (nthreads <= 0) nthreads = omp_get_max_threads();                                 \
    const long nblocks = (R + BLK - 1) / BLK;                                            \
    /* start the thread team before the clock: start-up is not compute */               \
    _Pragma("omp parallel num_threads(nthreads)")                                        \
    { (void)0; }                                                                         \
    double t0 = omp_get_wtime();                                                         \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")               \
    for (long b = 0; b < nblocks; b++) {                                                 \
        ptrdiff_t j0 = (ptrdiff_t)b * BLK;                                               \
        int n = (int)((R - j0) < BLK ? (R - j0) : BLK);                                  \
        train_block_##SUFFIX(w_init, lr, w_out, loss_out, R, j0, n, steps,               \
                             i1, i2, t1, t2);                                            \
    }                                                                                    \
    return omp_get_wtime() - t0;                                                         \
}

DEFINE_BLOCK(f64, double, exp)
DEFINE_BLOCK(f32, float, expf)
