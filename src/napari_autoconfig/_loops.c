/* The few loops of the fingerprint that numpy cannot do in one pass, compiled (optional: the
 * package falls back to numpy where this was not built, with the same numbers).
 *
 * pack(piece, bits, word_counts, itemsize, signed) -> largest
 *     One pass over a piece of a mask: the largest label, the packed foreground bits (one bit per
 *     voxel, set where the label is nonzero, or > 0 for signed labels; voxel i in bit i % 8 of
 *     byte i / 8, np.packbits(..., bitorder="little")) and the set bits per 64-voxel word.
 *     numpy needs three passes for this (max, packbits, bitwise_count). On x86 the usual uint8
 *     mask goes through vector compares (AVX2 where the CPU has it, else SSE2).
 *
 * running(word_counts, running)
 *     The set bits before each superblock of 1,024 voxels (16 words), then the total.
 *
 * select(ranks, running, word_counts, bits, positions)
 *     The flat positions of the foreground voxels of the given sorted ranks: the superblock by a
 *     walk (the ranks ascend), then the word and the bit by lane arithmetic, without branches.
 *
 * gather(source, positions, out, itemsize)
 *     The drawn voxels of an image, read from its memory map with the reads overlapped.
 *
 * draw(key, pos, rng, values, out, itemsize) -> pos
 *     numpy's RandomState(...).choice(values, out.size) for values.size = rng + 1 <= 2**32: the
 *     Mersenne Twister (MT19937) run from the generator's state (its 624-word key, updated in
 *     place, and position, returned), each index a 32-bit word masked to rng's bits and redrawn
 *     while above rng (numpy's legacy randint), the values gathered as they are drawn.
 *
 * tally(values, counts, itemsize, signed)
 *     How often each 8- or 16-bit value occurs, added into counts (int64, one per possible value,
 *     a signed value v at v + 2**(bits - 1), so that the order is the values' order): what
 *     np.bincount does after a copy of the values as intp, eight times their size.
 *
 * pair_tally(values, labels, counts, itemsize, signed, start, width, rows, columns)
 *     MONAI's datastats of a piece of an image channel in one pass: how often each (label index,
 *     8- or 16-bit value) pair occurs, added into counts (int64, label index times 2**bits plus
 *     the value shifted as in tally), and where the voxels > 0 lie: per row of width voxels
 *     (flat positions start...) and per column, a flag set in rows / columns (uint8).
 *
 * release(mapping) -> done
 *     madvise(MADV_DONTNEED) over a read-only mmap.mmap: its clean file pages leave the process.
 *     mmap.mmap.madvise holds the interpreter lock while the kernel unmaps them, a tenth of a
 *     case's work; this lets the other threads run meanwhile.
 *
 * A file truncated while pack or gather reads its memory map would kill the process with SIGBUS
 * (its pages past the new end no longer exist). Both read under a guard: a SIGBUS raised by
 * their own reads, in their own thread, jumps back out of the loop, and the call raises OSError
 * (EFAULT) instead, which the readers turn into one line naming the file. A SIGBUS anywhere else
 * goes to the handler that was there before (Python's faulthandler, or the default: the crash).
 *
 * All take and fill contiguous buffers given by the caller (numpy arrays), so this file needs no
 * numpy headers, and all let other threads run while they work. The Python side checks shapes
 * and types; the checks here only keep a wrong call from touching memory it must not.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#define HAVE_BUS_GUARD 1
#endif

#ifdef HAVE_BUS_GUARD
/* Where this thread's guarded read jumps back to on SIGBUS; NULL outside a guarded read. */
static _Thread_local sigjmp_buf *bus_jump = NULL;
static struct sigaction bus_previous;
static int bus_installed = 0;
static volatile sig_atomic_t bus_forwarded = 0; /* a SIGBUS not ours was handed on already */

static void on_bus(int sig, siginfo_t *info, void *context)
{
    sigjmp_buf *jump = bus_jump;
    if (jump != NULL) { /* our read of a mapping whose file shrank: leave the loop */
        bus_jump = NULL;
        siglongjmp(*jump, 1);
    }
    /* not ours: whoever handled SIGBUS before (once: it may hand the signal back to us), then
     * the default action, the crash */
    if (!bus_forwarded) {
        bus_forwarded = 1;
        if (bus_previous.sa_flags & SA_SIGINFO) {
            bus_previous.sa_sigaction(sig, info, context);
        } else if (bus_previous.sa_handler != SIG_DFL && bus_previous.sa_handler != SIG_IGN) {
            bus_previous.sa_handler(sig);
        }
    }
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
}

/* Install the handler once (at import); 0 on success. */
static int install_bus_guard(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_bus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &bus_previous) != 0) return -1;
    bus_installed = 1;
    return 0;
}

/* fn(arg) with SIGBUS from this thread's reads turned into a return of 1 (then what fn wrote is
 * garbage and the caller raises); 0 when fn ran through. The signal mask is saved: the jump
 * leaves the handler with SIGBUS unblocked again. A function of its own, so that no variable of
 * the caller lives across the jump. */
static int run_guarded(void (*fn)(void *), void *arg)
{
    sigjmp_buf jump_here;
    struct sigaction current;
    /* someone installed a handler since (faulthandler.enable() after the import): put ours in
     * front again, theirs kept as the one a SIGBUS that is not ours goes to */
    if (bus_installed && sigaction(SIGBUS, NULL, &current) == 0 &&
        !((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_bus))
        install_bus_guard();
    if (!bus_installed) {
        fn(arg);
        return 0;
    }
    if (sigsetjmp(jump_here, 1) != 0) {
        bus_jump = NULL;
        return 1;
    }
    bus_jump = &jump_here;
    fn(arg);
    bus_jump = NULL;
    return 0;
}
#else
static int run_guarded(void (*fn)(void *), void *arg)
{
    fn(arg);
    return 0;
}
#endif

/* The exception of a guarded read that faulted: the mapped file is shorter than it was. */
static void set_shrank_error(const char *who)
{
#ifdef HAVE_BUS_GUARD
    errno = EFAULT;
#endif
    PyErr_Format(PyExc_OSError, "%s: the mapped file shrank while it was read (SIGBUS)", who);
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86_DISPATCH 1 /* SSE2 always (x86-64); AVX2 and popcnt where the CPU has them */
#endif

static inline int popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

#define SUPER_WORDS 16 /* 64-bit words per superblock of 1,024 voxels */
/* Bytes of mask asked for ahead of the one read: the hardware's own prefetch stops at every 4 KB
 * page, and a page ahead made the pass 1.3x faster on two threads (512 B to 8 KB measured). */
#define PACK_AHEAD 4096
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline)) /* one copy per constant item size */
#else
#define ALWAYS_INLINE inline
#endif
#define GATHER_AHEAD 16 /* positions between the one read and the one fetched early */
#define AHEAD 16       /* superblocks between the one searched and the one fetched early */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* SELECT[8 * b + j]: the place of the j-th set bit of byte b, 0 = least significant */
static uint8_t SELECT[256 * 8];

static void fill_tables(void)
{
    for (int b = 0; b < 256; b++) {
        int found = 0;
        for (int place = 0; place < 8; place++) {
            if (b & (1 << place)) SELECT[8 * b + found++] = (uint8_t)place;
        }
    }
}

/* Store a word whose bit i is voxel i, as 8 little-endian bytes (byte k: voxels 8k..8k+7). */
static inline void store_word(uint8_t *out, uint64_t word, Py_ssize_t nbytes)
{
    for (Py_ssize_t k = 0; k < nbytes; k++) out[k] = (uint8_t)(word >> (8 * k));
}

/* One scalar loop per label type, 64 voxels to a word (the labels aligned to their size: the
 * caller sends unaligned ones to numpy). */
#define PACK_SCALAR(NAME, T, IS_FG)                                                              \
    static void NAME(const T *p, Py_ssize_t n, uint8_t *bits, uint8_t *counts, T *largest)     \
    {                                                                                            \
        T top = *largest;                                                                        \
        for (Py_ssize_t start = 0; start < n; start += 64) {                                     \
            Py_ssize_t stop = n - start < 64 ? n - start : 64;                                   \
            uint64_t word = 0;                                                                   \
            for (size_t line = 0; line < sizeof(T); line++) /* 64 voxels: sizeof(T) lines */     \
                PREFETCH((const char *)(p + start) + PACK_AHEAD + 64 * line);                    \
            for (Py_ssize_t i = 0; i < stop; i++) {                                              \
                T v = p[start + i];                                                              \
                if (v > top) top = v;                                                            \
                word |= (uint64_t)(IS_FG(v)) << i;                                               \
            }                                                                                    \
            store_word(bits + start / 8, word, (stop + 7) / 8);                                  \
            counts[start / 64] = (uint8_t)popcount64(word);                                      \
        }                                                                                        \
        *largest = top;                                                                          \
    }

#define NONZERO(v) ((v) != 0)
#define POSITIVE(v) ((v) > 0)
PACK_SCALAR(pack_u8_scalar, uint8_t, NONZERO)
PACK_SCALAR(pack_u16, uint16_t, NONZERO)
PACK_SCALAR(pack_u32, uint32_t, NONZERO)
PACK_SCALAR(pack_u64, uint64_t, NONZERO)
PACK_SCALAR(pack_i8, int8_t, POSITIVE)
PACK_SCALAR(pack_i16, int16_t, POSITIVE)
PACK_SCALAR(pack_i32, int32_t, POSITIVE)
PACK_SCALAR(pack_i64, int64_t, POSITIVE)

#ifdef HAVE_X86_DISPATCH
/* The largest byte of a register. */
static inline uint8_t largest_lane(__m128i top)
{
    uint8_t lanes[16], most = 0;
    _mm_storeu_si128((__m128i *)lanes, top);
    for (int i = 0; i < 16; i++) most = lanes[i] > most ? lanes[i] : most;
    return most;
}

/* uint8 labels, 64 voxels a word from 4 compares of 16: movemask gives the bits in voxel order. */
static Py_ssize_t pack_u8_sse2(const uint8_t *p, Py_ssize_t n, uint8_t *bits, uint8_t *counts,
                               uint8_t *largest)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i top = _mm_set1_epi8((char)*largest);
    Py_ssize_t whole = n / 64 * 64;
    for (Py_ssize_t start = 0; start < whole; start += 64) {
        PREFETCH(p + start + PACK_AHEAD);
        uint64_t zeros = 0;
        for (int j = 0; j < 4; j++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + start + 16 * j));
            top = _mm_max_epu8(top, v);
            zeros |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)) << (16 * j);
        }
        uint64_t word = ~zeros;
        memcpy(bits + start / 8, &word, 8);
        counts[start / 64] = (uint8_t)popcount64(word);
    }
    *largest = largest_lane(top);
    return whole;
}

/* The same with two compares of 32 and a hardware popcount. */
__attribute__((target("avx2,popcnt"))) static Py_ssize_t
pack_u8_avx2(const uint8_t *p, Py_ssize_t n, uint8_t *bits, uint8_t *counts, uint8_t *largest)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i top = _mm256_set1_epi8((char)*largest);
    Py_ssize_t whole = n / 64 * 64;
    for (Py_ssize_t start = 0; start < whole; start += 64) {
        PREFETCH(p + start + PACK_AHEAD);
        __m256i a = _mm256_loadu_si256((const __m256i *)(p + start));
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + start + 32));
        top = _mm256_max_epu8(top, _mm256_max_epu8(a, b));
        uint64_t low = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, zero));
        uint64_t high = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, zero));
        uint64_t word = ~(low | high << 32);
        memcpy(bits + start / 8, &word, 8);
        counts[start / 64] = (uint8_t)_mm_popcnt_u64(word);
    }
    *largest = largest_lane(
        _mm_max_epu8(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1)));
    return whole;
}

static int have_avx2; /* the CPU has AVX2 and popcnt */
static int use_avx2;  /* ... and the AVX2 loop is in use (tests turn it off to run SSE2's) */
#endif

/* uint8 (and bool) labels, the usual mask: whole words with vector compares, the tail scalar. */
static void pack_u8(const uint8_t *p, Py_ssize_t n, uint8_t *bits, uint8_t *counts,
                    uint8_t *largest)
{
    Py_ssize_t whole = 0;
#ifdef HAVE_X86_DISPATCH
    whole = use_avx2 ? pack_u8_avx2(p, n, bits, counts, largest)
                      : pack_u8_sse2(p, n, bits, counts, largest);
#endif
    pack_u8_scalar(p + whole, n - whole, bits + whole / 8, counts + whole / 64, largest);
}

static int big_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

/* The largest label so far, in whichever type the labels have. */
typedef union {
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
    int8_t i8; int16_t i16; int32_t i32; int64_t i64;
} Label;

/* One pack call's arguments, for run_guarded. */
typedef struct {
    int code;
    const void *p;
    Py_ssize_t n;
    uint8_t *b, *c;
    Label *top;
} PackCall;

static void pack_call(void *arg)
{
    PackCall *a = arg;
    switch (a->code) {
    case 1: pack_u8(a->p, a->n, a->b, a->c, &a->top->u8); break;
    case 2: pack_u16(a->p, a->n, a->b, a->c, &a->top->u16); break;
    case 4: pack_u32(a->p, a->n, a->b, a->c, &a->top->u32); break;
    case 8: pack_u64(a->p, a->n, a->b, a->c, &a->top->u64); break;
    case -1: pack_i8(a->p, a->n, a->b, a->c, &a->top->i8); break;
    case -2: pack_i16(a->p, a->n, a->b, a->c, &a->top->i16); break;
    case -4: pack_i32(a->p, a->n, a->b, a->c, &a->top->i32); break;
    default: pack_i64(a->p, a->n, a->b, a->c, &a->top->i64); break;
    }
}

static PyObject *pack(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer piece, bits, counts;
    int size, is_signed;
    if (!PyArg_ParseTuple(args, "y*w*w*ip", &piece, &bits, &counts, &size, &is_signed))
        return NULL;
    PyObject *result = NULL;
    /* one code per loop: the label size in bytes, negative when signed */
    int code = is_signed ? -size : size;
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        PyErr_Format(PyExc_ValueError, "pack: no loop for %d-byte labels", size);
        goto done;
    }
    Py_ssize_t n = piece.len / size;
    if (n == 0 || piece.len % size || bits.len < (n + 7) / 8 || counts.len < (n + 63) / 64) {
        PyErr_SetString(PyExc_ValueError, "pack: buffers of the wrong size");
        goto done;
    }
    uint8_t *b = bits.buf, *c = counts.buf;
    const void *p = piece.buf;
    Label top;
    switch (code) {
    case 1: top.u8 = 0; break;
    case 2: top.u16 = 0; break;
    case 4: top.u32 = 0; break;
    case 8: top.u64 = 0; break;
    case -1: top.i8 = INT8_MIN; break;
    case -2: top.i16 = INT16_MIN; break;
    case -4: top.i32 = INT32_MIN; break;
    default: top.i64 = INT64_MIN; break;
    }
    PackCall call = {code, p, n, b, c, &top};
    int faulted;
    Py_BEGIN_ALLOW_THREADS
    faulted = run_guarded(pack_call, &call);
    Py_END_ALLOW_THREADS
    if (faulted) {
        set_shrank_error("pack");
        goto done;
    }
    switch (code) {
    case 1: result = PyLong_FromUnsignedLong(top.u8); break;
    case 2: result = PyLong_FromUnsignedLong(top.u16); break;
    case 4: result = PyLong_FromUnsignedLong(top.u32); break;
    case 8: result = PyLong_FromUnsignedLongLong(top.u64); break;
    case -1: result = PyLong_FromLong(top.i8); break;
    case -2: result = PyLong_FromLong(top.i16); break;
    case -4: result = PyLong_FromLong(top.i32); break;
    default: result = PyLong_FromLongLong(top.i64); break;
    }
done:
    PyBuffer_Release(&piece);
    PyBuffer_Release(&bits);
    PyBuffer_Release(&counts);
    return result;
}

#define ONES16 0x0001000100010001ULL
#define HIGH16 0x8000800080008000ULL
#define ONES8 0x0101010101010101ULL
#define HIGH8 0x8080808080808080ULL

/* 4 bytes spread into 4 lanes of 16 bits. */
static inline uint64_t widen4(const uint8_t *c)
{
    return (uint64_t)c[0] | (uint64_t)c[1] << 16 | (uint64_t)c[2] << 32 | (uint64_t)c[3] << 48;
}

/* The word of a superblock holding its rank-th set bit, from the 16 word counts: their running
 * sums in 16-bit lanes, and how many of those are <= rank, all without a branch (a branch per
 * word mispredicts once per draw). `left` becomes the rank inside that word. */
static inline int word_in_superblock(const uint8_t *counts, int64_t *left)
{
    uint64_t sums[4], carry = 0, at_most = 0;
    const uint64_t k = (uint64_t)*left * ONES16 | HIGH16; /* rank < 1,024: no lane borrows */
    for (int j = 0; j < 4; j++) {
        sums[j] = (widen4(counts + 4 * j) + carry) * ONES16; /* running sums, lane by lane */
        carry = sums[j] >> 48;
        at_most += ((k - sums[j]) & HIGH16) >> 15; /* 1 per lane whose sum is <= rank */
    }
    int word = (int)((at_most * ONES16) >> 48);
    if (word) *left -= (int64_t)((sums[(word - 1) / 4] >> (16 * ((word - 1) % 4))) & 0xFFFF);
    return word;
}

/* Where the k-th set bit of a word is (0..63), the same way with 8 lanes of bytes. */
static inline int bit_in_word(uint64_t x, int k)
{
    uint64_t s = x - ((x >> 1) & 0x5555555555555555ULL); /* bits per byte, by halving */
    s = (s & 0x3333333333333333ULL) + ((s >> 2) & 0x3333333333333333ULL);
    s = (s + (s >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    const uint64_t sums = s * ONES8; /* byte i: set bits in bytes 0..i */
    const uint64_t at_most = (((uint64_t)k * ONES8 | HIGH8) - sums) & HIGH8;
    const int byte = (int)((((at_most >> 7) * ONES8) >> 56));
    const int before = (int)(((sums << 8) >> (8 * byte)) & 0xFF);
    return 8 * byte + SELECT[8 * ((x >> (8 * byte)) & 0xFF) + (k - before)];
}

static PyObject *select_ranks(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer ranks, running, counts, bits, positions;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*", &ranks, &running, &counts, &bits, &positions))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t draws = ranks.len / 8, supers = running.len / 8 - 1;
    if (ranks.len % 8 || running.len % 8 || supers < 0 || positions.len != ranks.len ||
        counts.len < supers * SUPER_WORDS || bits.len < supers * SUPER_WORDS * 8) {
        PyErr_SetString(PyExc_ValueError, "select: buffers of the wrong size");
        goto done;
    }
    const int64_t *r = ranks.buf, *run = running.buf;
    const uint8_t *c = counts.buf, *b = bits.buf;
    int64_t *out = positions.buf;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t s = 0;
    for (Py_ssize_t d = 0; d < draws; d++) {
        int64_t rank = r[d];
        if (rank < 0 || rank >= run[supers] || (d && rank < r[d - 1])) {
            bad = 1;
            break;
        }
        while (run[s + 1] <= rank) { /* ranks ascend: the superblocks are walked once */
            s++;
            /* the mask's pass has pushed the bits out of the cache: ask for those a few draws
             * ahead now (the walk is in order, but a jump of a few hundred bytes a draw is too
             * irregular for the hardware to guess) */
            PREFETCH(b + (s + AHEAD) * SUPER_WORDS * 8);
            PREFETCH(b + (s + AHEAD) * SUPER_WORDS * 8 + 64);
            PREFETCH(c + (s + AHEAD) * SUPER_WORDS);
        }
        int64_t left = rank - run[s];
        Py_ssize_t word = s * SUPER_WORDS + word_in_superblock(c + s * SUPER_WORDS, &left);
        uint64_t held;
        memcpy(&held, b + 8 * word, 8);
        out[d] = (int64_t)word * 64 + bit_in_word(held, (int)left);
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "select: ranks must ascend and lie below the count");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&ranks);
    PyBuffer_Release(&running);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&bits);
    PyBuffer_Release(&positions);
    return result;
}

static PyObject *running_counts(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer counts, running;
    if (!PyArg_ParseTuple(args, "y*w*", &counts, &running)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t supers = running.len / 8 - 1;
    if (running.len % 8 || supers < 0 || counts.len != supers * SUPER_WORDS) {
        PyErr_SetString(PyExc_ValueError, "running: buffers of the wrong size");
        goto done;
    }
    const uint8_t *c = counts.buf;
    int64_t *run = running.buf, total = 0;
    Py_BEGIN_ALLOW_THREADS
    run[0] = 0;
    for (Py_ssize_t s = 0; s < supers; s++) {
        int in_super = 0;
        for (int w = 0; w < SUPER_WORDS; w++) in_super += c[s * SUPER_WORDS + w];
        total += in_super;
        run[s + 1] = total;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&counts);
    PyBuffer_Release(&running);
    return result;
}

/* out[i] = source[at[i]] for items of `size` bytes; 1 if a position lies outside the source */
static ALWAYS_INLINE int gather_items(const char *from, const int64_t *at, Py_ssize_t count,
                                      int64_t items, char *to, const int size)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        /* each voxel is a miss of its own: ask for one a few ahead, so that the misses overlap */
        if (i + GATHER_AHEAD < count && at[i + GATHER_AHEAD] >= 0 && at[i + GATHER_AHEAD] < items)
            PREFETCH(from + at[i + GATHER_AHEAD] * size);
        if (at[i] < 0 || at[i] >= items) return 1;
        memcpy(to + i * size, from + at[i] * size, (size_t)size);
    }
    return 0;
}

/* One gather call's arguments and its outcome, for run_guarded. */
typedef struct {
    const char *from;
    const int64_t *at;
    Py_ssize_t count;
    int64_t items;
    char *to;
    int size, bad;
} GatherCall;

static void gather_call(void *arg)
{
    GatherCall *a = arg;
    /* one loop per item size: a memcpy of a constant size is one load, of a variable size a call */
    switch (a->size) {
    case 1: a->bad = gather_items(a->from, a->at, a->count, a->items, a->to, 1); break;
    case 2: a->bad = gather_items(a->from, a->at, a->count, a->items, a->to, 2); break;
    case 4: a->bad = gather_items(a->from, a->at, a->count, a->items, a->to, 4); break;
    default: a->bad = gather_items(a->from, a->at, a->count, a->items, a->to, 8); break;
    }
}

static PyObject *gather(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer source, positions, out;
    int size;
    if (!PyArg_ParseTuple(args, "y*y*w*i", &source, &positions, &out, &size)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = positions.len / 8;
    if ((size != 1 && size != 2 && size != 4 && size != 8) || positions.len % 8 ||
        out.len != count * size) {
        PyErr_SetString(PyExc_ValueError, "gather: buffers of the wrong size");
        goto done;
    }
    const int64_t *at = positions.buf, items = source.len / size;
    const char *from = source.buf;
    char *to = out.buf;
    GatherCall call = {from, at, count, items, to, size, 0};
    int faulted;
    Py_BEGIN_ALLOW_THREADS
    faulted = run_guarded(gather_call, &call);
    Py_END_ALLOW_THREADS
    if (faulted) {
        set_shrank_error("gather");
        goto done;
    }
    if (call.bad) {
        PyErr_SetString(PyExc_IndexError, "gather: a position outside the source");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&source);
    PyBuffer_Release(&positions);
    PyBuffer_Release(&out);
    return result;
}

/* The Mersenne Twister (Matsumoto and Nishimura, 1998), as numpy's MT19937 keeps it: 624 words
 * and the position of the next one to temper; all 624 are regenerated when the position reaches
 * the end. */
#define MT_N 624
#define MT_M 397

static inline uint32_t mt_twist(uint32_t upper, uint32_t lower, uint32_t far)
{
    uint32_t y = (upper & 0x80000000u) | (lower & 0x7fffffffu);
    return far ^ (y >> 1) ^ ((0u - (y & 1u)) & 0x9908b0dfu); /* no branch: loops vectorize */
}

static void mt_regenerate(uint32_t *key)
{
    int i;
    for (i = 0; i < MT_N - MT_M; i++) key[i] = mt_twist(key[i], key[i + 1], key[i + MT_M]);
    for (; i < MT_N - 1; i++) key[i] = mt_twist(key[i], key[i + 1], key[i + MT_M - MT_N]);
    key[MT_N - 1] = mt_twist(key[MT_N - 1], key[0], key[MT_M - 1]);
}

static inline uint32_t mt_temper(uint32_t y)
{
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* Indices drawn ahead of their gather: each read of a large source is a miss of its own, and
 * knowing the next ones lets their reads start early and overlap. */
#define DRAW_BATCH 256

/* out[i] = values[index i] for `count` indices drawn as numpy's legacy randint(0, rng + 1) draws
 * them (masked rejection on the 32-bit stream); returns the key's position afterwards. */
static ALWAYS_INLINE int draw_items(uint32_t *key, int pos, uint32_t rng, const char *from,
                                    Py_ssize_t count, char *to, const int size)
{
    uint32_t mask = rng;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t at[DRAW_BATCH];
    uint32_t word[MT_N]; /* the key's words tempered, all at once: a loop the compiler vectorizes */
    for (int j = 0; j < MT_N; j++) word[j] = mt_temper(key[j]);
    for (Py_ssize_t done = 0; done < count;) {
        int n = count - done < DRAW_BATCH ? (int)(count - done) : DRAW_BATCH;
        for (int i = 0; i < n;) {
            if (pos == MT_N) {
                mt_regenerate(key);
                for (int j = 0; j < MT_N; j++) word[j] = mt_temper(key[j]);
                pos = 0;
            }
            /* each word keeps one index at most: n - i words cannot draw past the batch */
            int end = MT_N - pos < n - i ? MT_N : pos + (n - i);
            for (; pos < end; pos++) {
                uint32_t index = word[pos] & mask;
                /* kept where <= rng, else overwritten by the next word (numpy draws again):
                 * without a branch, as a rejection that comes at random would mispredict one */
                at[i] = index;
                i += index <= rng;
            }
        }
        char *dest = to + done * size;
        for (int i = 0; i < n && i < GATHER_AHEAD; i++) PREFETCH(from + (size_t)at[i] * size);
        for (int i = 0; i < n; i++) {
            if (i + GATHER_AHEAD < n) PREFETCH(from + (size_t)at[i + GATHER_AHEAD] * size);
            memcpy(dest + (size_t)i * size, from + (size_t)at[i] * size, (size_t)size);
        }
        done += n;
    }
    return pos;
}

static PyObject *draw(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer key, values, out;
    int pos, size;
    unsigned long long rng;
    if (!PyArg_ParseTuple(args, "w*iKy*w*i", &key, &pos, &rng, &values, &out, &size)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = out.len / (size > 0 ? size : 1);
    if ((size != 1 && size != 2 && size != 4 && size != 8) || key.len != MT_N * 4 ||
        pos < 0 || pos > MT_N || rng > 0xFFFFFFFFull || out.len % size ||
        values.len != (Py_ssize_t)(rng + 1) * size) {
        PyErr_SetString(PyExc_ValueError, "draw: buffers of the wrong size");
        goto done;
    }
    uint32_t *k = key.buf;
    const char *from = values.buf;
    char *to = out.buf;
    uint32_t r = (uint32_t)rng;
    Py_BEGIN_ALLOW_THREADS
    if (r == 0) { /* numpy's randint(0, 1) draws nothing from the stream */
        for (Py_ssize_t i = 0; i < count; i++) memcpy(to + i * size, from, (size_t)size);
    } else {
        switch (size) {
        case 1: pos = draw_items(k, pos, r, from, count, to, 1); break;
        case 2: pos = draw_items(k, pos, r, from, count, to, 2); break;
        case 4: pos = draw_items(k, pos, r, from, count, to, 4); break;
        default: pos = draw_items(k, pos, r, from, count, to, 8); break;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLong(pos);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&values);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *tally(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer values, counts;
    int size, is_signed;
    if (!PyArg_ParseTuple(args, "y*w*ip", &values, &counts, &size, &is_signed)) return NULL;
    PyObject *result = NULL;
    if ((size != 1 && size != 2) || values.len % size ||
        counts.len != (Py_ssize_t)8 << (8 * size)) {
        PyErr_SetString(PyExc_ValueError, "tally: buffers of the wrong size");
        goto done;
    }
    int64_t *c = counts.buf;
    Py_ssize_t n = values.len / size;
    Py_BEGIN_ALLOW_THREADS
    if (size == 1) {
        const uint8_t *v = values.buf;
        const uint8_t flip = is_signed ? 0x80 : 0; /* two's complement: the sign bit flipped */
        for (Py_ssize_t i = 0; i < n; i++) c[v[i] ^ flip]++;
    } else {
        const uint16_t *v = values.buf;
        const uint16_t flip = is_signed ? 0x8000 : 0;
        for (Py_ssize_t i = 0; i < n; i++) c[v[i] ^ flip]++;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&counts);
    return result;
}

static PyObject *pair_tally(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer values, labels, counts, rows, columns;
    int size, is_signed;
    Py_ssize_t start, width;
    if (!PyArg_ParseTuple(args, "y*y*w*ipnnw*w*", &values, &labels, &counts, &size, &is_signed,
                          &start, &width, &rows, &columns))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = size > 0 ? values.len / size : 0;
    if ((size != 1 && size != 2) || values.len % size || labels.len != n || width <= 0 ||
        start < 0 || columns.len != width || counts.len % ((Py_ssize_t)8 << (8 * size)) ||
        (n && (start + n - 1) / width >= rows.len)) {
        PyErr_SetString(PyExc_ValueError, "pair_tally: buffers of the wrong size");
        goto done;
    }
    int64_t *c = counts.buf;
    const uint8_t *lab = labels.buf;
    uint8_t *row_flags = rows.buf, *column_flags = columns.buf;
    Py_ssize_t label_count = counts.len / ((Py_ssize_t)8 << (8 * size));
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t i = 0;
    while (i < n && !bad) {
        Py_ssize_t row = (start + i) / width, column = (start + i) % width;
        Py_ssize_t end = i + (width - column) < n ? i + (width - column) : n;
        uint8_t any = 0;
        if (size == 1) {
            const uint8_t *v = values.buf;
            const uint8_t flip = is_signed ? 0x80 : 0;
            for (Py_ssize_t k = i; k < end; k++, column++) {
                if (lab[k] >= label_count) { bad = 1; break; }
                uint8_t positive = is_signed ? (int8_t)v[k] > 0 : v[k] != 0;
                c[((int64_t)lab[k] << 8) | (uint8_t)(v[k] ^ flip)]++;
                column_flags[column] |= positive;
                any |= positive;
            }
        } else {
            const uint16_t *v = values.buf;
            const uint16_t flip = is_signed ? 0x8000 : 0;
            for (Py_ssize_t k = i; k < end; k++, column++) {
                if (lab[k] >= label_count) { bad = 1; break; }
                uint8_t positive = is_signed ? (int16_t)v[k] > 0 : v[k] != 0;
                c[((int64_t)lab[k] << 16) | (uint16_t)(v[k] ^ flip)]++;
                column_flags[column] |= positive;
                any |= positive;
            }
        }
        row_flags[row] |= any;
        i = end;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "pair_tally: a label index beyond the counts");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&values);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&columns);
    return result;
}

static PyObject *release(PyObject *self, PyObject *mapping)
{
    (void)self;
    /* only a read-only mmap.mmap: DONTNEED drops private or anonymous memory's contents, and a
     * held buffer keeps the mapping from being closed (unmapped) while the lock is let go */
    if (strcmp(Py_TYPE(mapping)->tp_name, "mmap.mmap") != 0) {
        PyErr_SetString(PyExc_TypeError, "release: an mmap.mmap only");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(mapping, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    if (!view.readonly) {
        PyErr_SetString(PyExc_ValueError, "release: read-only (ACCESS_READ) mappings only");
        goto done;
    }
#if (defined(__unix__) || defined(__APPLE__)) && defined(MADV_DONTNEED)
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || (uintptr_t)view.buf % (uintptr_t)page) { /* not the start of a mapping */
        PyErr_SetString(PyExc_ValueError, "release: the mapping does not start on a page");
        goto done;
    }
    int failed = 0;
    if (view.len > 0) {
        Py_BEGIN_ALLOW_THREADS
        failed = madvise(view.buf, (size_t)view.len, MADV_DONTNEED) != 0;
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(failed ? Py_False : Py_True); /* advisory: a refusal loses nothing */
#else
    result = Py_NewRef(Py_False);
#endif
done:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *vector_loop(PyObject *self, PyObject *args)
{
    (void)self;
    int wide = -1;
    if (!PyArg_ParseTuple(args, "|p", &wide)) return NULL;
#ifdef HAVE_X86_DISPATCH
    if (wide != -1) use_avx2 = wide && have_avx2;
    return PyUnicode_FromString(use_avx2 ? "avx2" : "sse2");
#else
    return PyUnicode_FromString("scalar");
#endif
}

static PyMethodDef methods[] = {
    {"pack", pack, METH_VARARGS,
     "pack(piece, bits, word_counts, itemsize, signed) -> largest: a piece's largest label, its packed "
     "foreground bits and the set bits per 64-voxel word, in one pass."},
    {"select", select_ranks, METH_VARARGS,
     "select(ranks, running, word_counts, bits, positions): the flat positions of the "
     "foreground voxels of the given ascending ranks."},
    {"running", running_counts, METH_VARARGS,
     "running(word_counts, running): set bits before each superblock of 16 words, then the "
     "total, from the words' counts."},
    {"gather", gather, METH_VARARGS,
     "gather(source, positions, out, itemsize): out[i] = source[positions[i]], items of "
     "itemsize bytes, the reads of a few positions ahead started early."},
    {"draw", draw, METH_VARARGS,
     "draw(key, pos, rng, values, out, itemsize) -> pos: numpy's legacy choice(values, out.size) "
     "from an MT19937 state (key updated in place, the new position returned)."},
    {"tally", tally, METH_VARARGS,
     "tally(values, counts, itemsize, signed): how often each 8- or 16-bit value occurs, added "
     "into counts (int64, signed values shifted by half the range)."},
    {"pair_tally", pair_tally, METH_VARARGS,
     "pair_tally(values, labels, counts, itemsize, signed, start, width, rows, columns): "
     "(label index, value) pairs counted and the rows / columns holding voxels > 0 flagged, in "
     "one pass over a piece of an image channel."},
    {"release", release, METH_O,
     "release(mapping) -> done: madvise(MADV_DONTNEED) over a read-only mmap.mmap, other "
     "threads running meanwhile; False where the system has no such call or refused it."},
    {"vector_loop", vector_loop, METH_VARARGS,
     "vector_loop([wide]) -> 'avx2', 'sse2' or 'scalar': the loop uint8 masks go through; "
     "vector_loop(False) turns AVX2 off (tests run the SSE2 loop with it), True back on where "
     "the CPU has it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_loops",
    "Compiled loops of the fingerprint (optional: numpy does the same without).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__loops(void)
{
    if (big_endian()) { /* the words are stored little-endian; numpy's path serves the rest */
        PyErr_SetString(PyExc_ImportError, "_loops: little-endian machines only");
        return NULL;
    }
    fill_tables();
#ifdef HAVE_X86_DISPATCH
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    use_avx2 = have_avx2;
#endif
#ifdef HAVE_BUS_GUARD
    if (!bus_installed && install_bus_guard() != 0) { /* unguarded, the loops still work */
        bus_installed = 0;
    }
#endif
    return PyModule_Create(&module);
}
