/* rt_ckpt: checkpoint files, one self-describing file per checkpoint.
 *
 * Layout (every integer little-endian, floats as their IEEE-754 bits):
 *   "MWTCKPT\0"  u32 version (1)  u32 entry count
 *   per entry:   u32 name length, name bytes (no NUL), u32 kind, u32 rank, i64 dims[rank],
 *                u64 byte count, the bytes
 *   u32 CRC-32 (zlib's) of everything before it.
 * A float32 tensor has rank 0..4 (rank 0: a scalar) and dims' product * 4 bytes. A byte blob (the
 * program's source, RNG states, text) is written with rank 1 and dims[0] = its byte count. */
#ifndef RT_CKPT_H
#define RT_CKPT_H

#include <stdbool.h>
#include <stddef.h>

#define RT_CKPT_VERSION 1u

typedef enum { RT_CKPT_F32 = 1, RT_CKPT_BYTES = 2 } RtCkptKind;

typedef struct RtCkptEntry {
  char *name;
  RtCkptKind kind;
  int rank;
  long long dims[4]; /* dims[rank..4) are 0 */
  void *data;        /* never NULL, even when bytes == 0 */
  size_t bytes;
} RtCkptEntry;

/* Zero-initialize to start. Entries keep the order they were added (or read) in. */
typedef struct RtCkpt {
  RtCkptEntry *e;
  int n, cap;
} RtCkpt;

/* Copy the data in; an entry of the same name is replaced in place. 0, or -1 when out of memory or
 * when the shape is invalid (rank outside 0..4, a negative dim, a size that overflows). dims may
 * be NULL for rank 0, data NULL when there are no elements. */
int rt_ckpt_add_f32(RtCkpt *c, const char *name, int rank, const long long *dims,
                    const float *data);
int rt_ckpt_add_bytes(RtCkpt *c, const char *name, const void *data, size_t bytes);
/* NULL when there is no entry of that name. */
const RtCkptEntry *rt_ckpt_find(const RtCkpt *c, const char *name);

/* Writes PATH.tmp.<pid>, fflush + fsync, then rename()s it over PATH, so that a crash leaves either
 * the old PATH or the new one, never a broken one. 0, or -1 with "PATH: problem" in err (the
 * temporary file is then removed). A PATH that is there and is neither a regular file nor a
 * directory (/dev/null, a FIFO) is written in place. */
int rt_ckpt_save(const RtCkpt *c, const char *path, char *err, size_t errlen);

/* Whether PATH is there and is neither a regular file nor a directory (/dev/null, a FIFO, a
 * terminal): rt_ckpt_save writes it in place, and nothing can be read back from it. */
bool rt_ckpt_in_place(const char *path);

/* Whether rt_ckpt_save could write PATH (or any file be written there): creates and removes the
 * temporary file rt_ckpt_save would write (for a path written in place, whether it is writable).
 * For a long run to fail at its start, not at its first checkpoint. 0, or -1 with "PATH: problem". */
int rt_ckpt_writable(const char *path, char *err, size_t errlen);

/* Frees what c held, then reads PATH and validates all of it (magic, version, every size against
 * the file's length before anything is allocated, names NUL-free and unique, rank <= 4, dims >= 0,
 * byte counts matching the shapes, the checksum) before returning 0. On error returns -1 with c
 * empty and "PATH: problem" in err, e.g. "x.ckpt: truncated", "x.ckpt: checksum mismatch (the file
 * is corrupt)", "x.ckpt: checkpoint format version 7, this mwtc reads version 1". */
int rt_ckpt_load(RtCkpt *c, const char *path, char *err, size_t errlen);

/* Whether path starts as a checkpoint does (its magic), whatever the rest holds; reads 8 bytes. */
int rt_ckpt_looks_like(const char *path);

/* zlib's CRC-32 of n bytes, continuing from crc (0 to start), for any n. The checkpoint's own
 * checksum; also what modularize fingerprints a checkpoint's tensors and data with. */
unsigned long rt_crc32(unsigned long crc, const void *buf, size_t n);

/* Frees every entry and zeroes c; safe on a zeroed or already freed checkpoint. */
void rt_ckpt_free(RtCkpt *c);

#endif
