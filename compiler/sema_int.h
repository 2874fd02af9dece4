/* Shared between the sema_*.c files; not part of the compiler's interface. */
#ifndef MWT_SEMA_INT_H
#define MWT_SEMA_INT_H
#include <stdint.h>

#include "names.h"
#include "sema.h"

typedef enum { V_INT, V_FLOAT, V_BOOL, V_LAYERS } ValueKind;
typedef struct Value {
    ValueKind kind;
    long long i;
    double f;                  /* V_FLOAT; also set for V_INT */
    bool b;
    const Expr *layers;        /* V_LAYERS */
    Loc loc;                   /* where the value was written */
} Value;

/* Parameter bindings while a block or model body is expanded. */
typedef struct Env {
    const char *name;
    Value v;
    const struct Env *next;
} Env;

typedef struct Symbol {
    const char *name;
    const Item *item;
    bool bad;                  /* a block whose definition had errors */
    Net *net;                  /* a model that checked */
    DatasetInfo *data;
} Symbol;

/* Layers one model may expand to. Blocks that call blocks twice each double
 * at every level: 40 levels would be 2^40 layers, which no memory holds.
 * Far past any real network (a ResNet-1001 has about 3000). */
enum { SEMA_MAX_LAYERS = 200000 };
/* Parameters one block or model may take: checking them is quadratic in
 * their number (each against those before it), and no real block has more
 * than a few. */
enum { SEMA_MAX_PARAMS = 256 };

typedef struct SemaCtx {
    Arena *a;
    Diag *d;
    Vec blocks, models, datasets;      /* Symbol* */
    Vec reuses;                /* Symbol*: the names reuse statements give */
    const Program *prog;       /* every item: a name used before its definition is said so */
    const CallSite *site;      /* the block calls being expanded */
    Vec active;                /* const Item*: blocks being expanded, for recursion */
    int depth;
    long long layers;          /* made for the model being expanded: past SEMA_MAX_LAYERS, an error */
    bool too_many;             /* said so: its expansion stops */
    /* errors said so far, as hashes of place and message: a model's
     * expansion goes on past an error, and a block called many times would
     * say the same one at every call */
    uint64_t said[256];
    int nsaid;
} SemaCtx;

/* sema.c */
void sema_error(SemaCtx *c, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
Symbol *sema_find(Vec *syms, const char *name);
/* "[1, 28, 28]", in the arena, for messages. */
const char *sema_shape(SemaCtx *c, Shape s);
/* Edit distance, for "did you mean" hints (large for long names). */

/* sema_eval.c */
bool sema_eval(SemaCtx *c, const Expr *e, const Env *env, Value *out);
const char *value_str(Arena *a, const Value *v);

typedef enum { P_INT, P_NUM, P_BOOL, P_LAYERS, P_ANY } ParamType;
typedef struct ParamSpec {
    const char *name;
    ParamType type;
    bool required;
} ParamSpec;

/* Binds a call's arguments to the parameters `specs`: vals[i] and given[i]
 * per parameter. Reports every problem; false when there was one. */
bool sema_bind(SemaCtx *c, const char *what, Loc at, const ParamSpec *specs, int n,
               const Vec *args, const Env *env, Value *vals, bool *given);
bool sema_convert(SemaCtx *c, const char *what, const char *param, ParamType t, Value *v);

/* sema_model.c */
Net *sema_model(SemaCtx *c, const Item *model);
bool sema_block_names(SemaCtx *c, const Item *block);

/* sema_layers.c: the built-in layers */
typedef struct LayerRule LayerRule;
const LayerRule *layer_rule(const char *name);
bool layer_rule_apply(SemaCtx *c, const LayerRule *r, const Layer *y, const Env *env, Shape in,
                      NetLayer *out);
const char *layer_rule_names(void);
/* A layer's parameters and FLOPs per image, given in double, so that an
 * absurd network is an error (at loc, naming the layer) rather than an
 * overflow: past 1e15 parameters or 1e18 FLOPs. */
bool sema_set_counts(SemaCtx *c, Loc loc, const char *name, NetLayer *out, double params, double flops);

/* sema_data.c, sema_train.c */
DatasetInfo *sema_dataset(SemaCtx *c, const Item *it);
TrainInfo *sema_train(SemaCtx *c, const Item *it);
ModularizeInfo *sema_modularize(SemaCtx *c, const Item *it);
ReuseInfo *sema_reuse(SemaCtx *c, const Item *it);
/* Once every statement is checked: a reuse whose classes have fewer
 * training images than one batch of its model's train statement, where the
 * data set's size is known now (synthetic). */
/* One train statement per model, and one for each model that is modularized or reused. */
/* The closest name of syms to `name` if it looks like a typo of it, else NULL. */
const char *sema_closest(const Vec *syms, const char *name);
/* An unknown model or dataset name (kind IT_MODEL or IT_DATASET): defined
 * later, the other kind of item, a typo of a known one, or unknown. */
void sema_unknown(SemaCtx *c, Loc loc, ItemKind kind, const char *name);
/* When an item of that kind and name comes later in the program: says so, true. */
bool sema_defined_later(SemaCtx *c, Loc loc, ItemKind kind, const char *name);
/* Whether name was written after dataset, block or model in an item that a
 * syntax error (already reported) lost: a use of it says nothing more. */
bool sema_lost(SemaCtx *c, const char *name);
void sema_train_statements(SemaCtx *c, const Program *p, const Checked *out);
void sema_reuse_batches(SemaCtx *c, const Checked *out);

/* Key/value helpers for dataset, train, modularize and reuse bodies. */
const KeyVal *kv_find(const Vec *kvs, const char *key);
bool kv_check_keys(SemaCtx *c, const char *what, const Vec *kvs, const char *const *keys);
bool kv_int(SemaCtx *c, const Vec *kvs, const char *key, long long lo, long long hi, long long *out);
/* Whether `key` is given and a valid integer (then in *out); a bad one is
 * reported and clears *ok, leaving everything else to go on as if unset. */
/* Whether some key of kvs is a misspelling of `key` (reported as unknown,
 * with `key` as its suggestion): then `key` is not "missing" as well. */
bool kv_misspelled(const Vec *kvs, const char *key);
bool key_int(SemaCtx *c, const Vec *kvs, const char *key, long long lo, long long hi, long long *out, bool *ok);
bool kv_num(SemaCtx *c, const Vec *kvs, const char *key, double lo, double hi, bool lo_open, double *out);
bool expr_int(SemaCtx *c, const Expr *e, const char *what, long long lo, long long hi, long long *out);
bool expr_num(SemaCtx *c, const Expr *e, const char *what, double lo, double hi, bool lo_open, double *out);
const char *expr_ident(const Expr *e);
const char *expr_kind_str(const Expr *e);

#endif
