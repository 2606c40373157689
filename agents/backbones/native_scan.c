/* First-order linear recurrence h_t = a_t * h_{t-1} + x_t, sequential in t, with its backward.
 * Layout: a, x, h, gh, da, dx are (B, T, C) contiguous; h0, dh0 are (B, C).
 * Parallel over (batch, channel block); within a block the loop runs over t, then over
 * contiguous channels (vectorizable). Compiled at first use by seqrl (see native_scan.py). */
#include <stddef.h>

#define BLOCK 64

/* The loop of every (B, T, C) kernel: in parallel over (batch b, block [c0, c1) of at most BLOCK
 * channels); off = b * T * C is the batch's offset. The innermost one-pass ``for`` only scopes
 * c0, c1 and off to the body that follows the macro. */
#define FOR_BATCH_AND_BLOCK                                                                      \
    _Pragma("omp parallel for collapse(2) num_threads(nthreads) schedule(static)")               \
    for (long b = 0; b < B; b++)                                                                 \
        for (long k = 0; k < (C + BLOCK - 1) / BLOCK; k++)                                       \
            for (long c0 = k * BLOCK, c1 = c0 + BLOCK < C ? c0 + BLOCK : C, off = b * T * C,     \
                 once = 1; once; once = 0)

#define DEFINE_SCAN(T_, SUF)                                                                     \
void scan_fwd_##SUF(const T_* a, const T_* x, const T_* h0, T_* h, long B, long T, long C,       \
                    int nthreads) {                                                              \
    FOR_BATCH_AND_BLOCK {                                                                        \
        const T_* prev = h0 + b * C;                                                             \
        for (long t = 0; t < T; t++) {                                                           \
            long o = off + t * C;                                                                \
            for (long c = c0; c < c1; c++) h[o + c] = a[o + c] * prev[c] + x[o + c];             \
            prev = h + o;                                                                        \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
/* g_t = gh_t + a_{t+1} g_{t+1};  dx_t = g_t;  da_t = g_t h_{t-1};  dh0 = a_0 g_0 */             \
void scan_bwd_##SUF(const T_* a, const T_* h, const T_* h0, const T_* gh, T_* da, T_* dx,       \
                    T_* dh0, long B, long T, long C, int nthreads) {                             \
    FOR_BATCH_AND_BLOCK {                                                                        \
        for (long t = T - 1; t >= 0; t--) {                                                      \
            long o = off + t * C;                                                                \
            const T_* hp = t > 0 ? h + o - C : h0 + b * C;                                       \
            if (t + 1 < T) {                                                                     \
                for (long c = c0; c < c1; c++) dx[o + c] = gh[o + c] + a[o + C + c] * dx[o + C + c]; \
            } else {                                                                             \
                for (long c = c0; c < c1; c++) dx[o + c] = gh[o + c];                            \
            }                                                                                    \
            for (long c = c0; c < c1; c++) da[o + c] = dx[o + c] * hp[c];                        \
        }                                                                                        \
        for (long c = c0; c < c1; c++) dh0[b * C + c] = a[off + c] * dx[off + c];                \
    }                                                                                            \
}

DEFINE_SCAN(float, f32)
DEFINE_SCAN(double, f64)

/* Selective scan (Mamba's SSM, diagonal real A), fused so (B, T, E, N) inputs are never built:
 *   a = exp(dt[b,t,e] * A[e,n]),  h[n] = a h[n] + dt x B[b,t,n],  y[b,t,e] = sum_n C[b,t,n] h[n]
 * x, dt, y: (B, T, E); A: (E, N); Bm, Cm: (B, T, N); h0: (B, E, N); hs: (B, T, E, N) saved for backward. */
#define DEFINE_SELECTIVE(T_, SUF, EXP)                                                           \
void sel_fwd_##SUF(const T_* x, const T_* dt, const T_* A, const T_* Bm, const T_* Cm,          \
                   const T_* h0, T_* y, T_* hs, long B, long T, long E, long N, int nthreads) {   \
    _Pragma("omp parallel for collapse(2) num_threads(nthreads) schedule(static)")               \
    for (long b = 0; b < B; b++) {                                                               \
        for (long e = 0; e < E; e++) {                                                           \
            const T_* Ae = A + e * N;                                                            \
            const T_* prev = h0 + (b * E + e) * N;                                               \
            for (long t = 0; t < T; t++) {                                                       \
                long bte = (b * T + t) * E + e, bt = b * T + t;                                  \
                T_ d = dt[bte], dx = d * x[bte], acc = 0;                                        \
                const T_* Bt = Bm + bt * N; const T_* Ct = Cm + bt * N;                          \
                T_* h = hs + bte * N;                                                            \
                _Pragma("omp simd reduction(+:acc)")                                             \
                for (long n = 0; n < N; n++) {                                                   \
                    h[n] = EXP(d * Ae[n]) * prev[n] + dx * Bt[n];                                \
                    acc += Ct[n] * h[n];                                                         \
                }                                                                                \
                y[bte] = acc;                                                                    \
                prev = h;                                                                        \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
/* Reverse pass. In: gy (B,T,E), ghT (B,E,N). Out: gx, gdt (B,T,E), gB, gC (B,T,N),             \
 * gA_part (B,E,N) (summed over b by the caller), gh0 (B,E,N). Parallel over b only, so the   \
 * reductions over e into gB, gC stay inside one thread. */                                    \
void sel_bwd_##SUF(const T_* x, const T_* dt, const T_* A, const T_* Bm, const T_* Cm,          \
                   const T_* h0, const T_* hs, const T_* gy, const T_* ghT, T_* gx, T_* gdt,      \
                   T_* gB, T_* gC, T_* gA_part, T_* gh0, long B, long T, long E, long N,          \
                   int nthreads) {                                                               \
    _Pragma("omp parallel for num_threads(nthreads) schedule(static)")                           \
    for (long b = 0; b < B; b++) {                                                               \
        for (long i = 0; i < T * N; i++) { gB[b * T * N + i] = 0; gC[b * T * N + i] = 0; }       \
        for (long e = 0; e < E; e++) {                                                           \
            const T_* Ae = A + e * N;                                                            \
            long be = b * E + e;                                                                 \
            T_* g = gh0 + be * N;    /* running dL/dh, ends as dL/dh0 */                         \
            T_* gAe = gA_part + be * N;                                                          \
            for (long n = 0; n < N; n++) { g[n] = ghT[be * N + n]; gAe[n] = 0; }                 \
            for (long t = T - 1; t >= 0; t--) {                                                  \
                long bte = (b * T + t) * E + e, bt = b * T + t;                                  \
                T_ d = dt[bte], xv = x[bte], gyv = gy[bte], dx = d * xv, gd = 0, gxv = 0;        \
                const T_* Bt = Bm + bt * N; const T_* Ct = Cm + bt * N;                          \
                T_* gBt = gB + bt * N; T_* gCt = gC + bt * N;                                    \
                const T_* ht = hs + bte * N;                                                     \
                const T_* hp = t > 0 ? hs + (bte - E) * N : h0 + be * N;                         \
                _Pragma("omp simd reduction(+:gd, gxv)")                                         \
                for (long n = 0; n < N; n++) {                                                   \
                    T_ a = EXP(d * Ae[n]);                                                       \
                    T_ gt = g[n] + gyv * Ct[n];  /* dL/dh_t */                                   \
                    T_ ga = gt * hp[n] * a;      /* dL/d(d*A) */                                 \
                    gCt[n] += gyv * ht[n];                                                       \
                    gBt[n] += gt * dx;                                                           \
                    gd += ga * Ae[n] + gt * xv * Bt[n];                                          \
                    gxv += gt * d * Bt[n];                                                       \
                    gAe[n] += ga * d;                                                            \
                    g[n] = a * gt;                                                               \
                }                                                                                \
                gdt[bte] = gd;                                                                   \
                gx[bte] = gxv;                                                                   \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
}

#include <math.h>
DEFINE_SELECTIVE(float, f32, expf)
DEFINE_SELECTIVE(double, f64, exp)

/* Gated scan (minGRU / minLSTM in linear space), fused with its gate and candidate activations:
 *   s = sigmoid(q),  c = g(v) = (v >= 0 ? v + 0.5 : sigmoid(v)),  h_t = s h_{t-1} + (1 - s) c
 * q, v, h: (B, T, C); h0: (B, C). The backward recomputes s and c from q and v.
 * sigmoid clamps its argument at -80 (float: exp(80) < FLT_MAX): -ffast-math assumes no inf, and
 * 1 / (1 + inf) came out NaN for q = -1e4; the clamp changes sigmoid by < 2e-35. */
#define DEFINE_GATED(T_, SUF, EXP)                                                               \
static inline T_ sigmoid_##SUF(T_ x) { return 1 / (1 + EXP(x < -80 ? (T_)80 : -x)); }           \
static inline T_ gpos_##SUF(T_ v) { return v >= 0 ? v + (T_)0.5 : sigmoid_##SUF(v); }           \
void gated_fwd_##SUF(const T_* q, const T_* v, const T_* h0, T_* h, long B, long T, long C,     \
                     int nthreads) {                                                             \
    FOR_BATCH_AND_BLOCK {                                                                        \
        const T_* prev = h0 + b * C;                                                             \
        for (long t = 0; t < T; t++) {                                                           \
            long o = off + t * C;                                                                \
            _Pragma("omp simd")                                                                  \
            for (long c = c0; c < c1; c++) {                                                     \
                T_ s = sigmoid_##SUF(q[o + c]);                                                  \
                h[o + c] = s * prev[c] + (1 - s) * gpos_##SUF(v[o + c]);                         \
            }                                                                                    \
            prev = h + o;                                                                        \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
/* G_t = gh_t + s_{t+1} G_{t+1} (dL/dh_t);  dq = G (h_{t-1} - c) s (1 - s);                    \
 * dv = G (1 - s) g'(v), g'(v) = 1 (v >= 0) or c (1 - c);  dh0 = s_0 G_0.                     \
 * dh0 holds the running s_{t+1} G_{t+1} until the end. */                                     \
void gated_bwd_##SUF(const T_* q, const T_* v, const T_* h, const T_* h0, const T_* gh,        \
                     T_* dq, T_* dv, T_* dh0, long B, long T, long C, int nthreads) {            \
    FOR_BATCH_AND_BLOCK {                                                                        \
        T_* carry = dh0 + b * C;                                                                 \
        for (long c = c0; c < c1; c++) carry[c] = 0;                                             \
        for (long t = T - 1; t >= 0; t--) {                                                      \
            long o = off + t * C;                                                                \
            const T_* hp = t > 0 ? h + o - C : h0 + b * C;                                       \
            _Pragma("omp simd")                                                                  \
            for (long c = c0; c < c1; c++) {                                                     \
                T_ s = sigmoid_##SUF(q[o + c]), vv = v[o + c], cv = gpos_##SUF(vv);              \
                T_ G = gh[o + c] + carry[c], dc = G * (1 - s);                                   \
                dq[o + c] = G * (hp[c] - cv) * s * (1 - s);                                      \
                dv[o + c] = vv >= 0 ? dc : dc * cv * (1 - cv);                                   \
                carry[c] = s * G;                                                                \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
}

DEFINE_GATED(float, f32, expf)
DEFINE_GATED(double, f64, exp)
