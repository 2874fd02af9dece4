/* The memory plan: no two values that are alive at the same time share a
 * byte, views share their operand's buffer, and persistent tensors sit in
 * their regions. Checked on every example and stdlib model's training
 * graphs (as written and fused) and inference graphs. */
#include <stdlib.h>
#include <string.h>

#include "mwt_test.h"
#include "plan.h"

static int is_view(const IrNode *n) { return n->op == IR_FLATTEN || n->op == IR_RESHAPE; }

/* Checks p; returns how many mask generators' input gradients it sums in
 * place, into the conv's gradient (a training graph's, after pass_fuse). */
static int check_plan(const Plan *p)
{
    int sums = 0;
    const IrGraph *g = p->g;
    int nv = g->next_id, nn = g->nodes.n;
    int *def = calloc((size_t)nv, sizeof(int)), *last = calloc((size_t)nv, sizeof(int));
    const IrValue **val = calloc((size_t)nv, sizeof(IrValue *));
    int *root = calloc((size_t)nv, sizeof(int));
    for (int i = 0; i < nn; i++) {
        const IrNode *n = g->nodes.v[i];
        const IrValue *outs[4] = { n->out, n->nextra > 0 ? n->extra[0] : NULL, n->nextra > 1 ? n->extra[1] : NULL,
                                   n->nextra > 2 ? n->extra[2] : NULL };
        for (int j = 0; j < 4; j++)
            if (outs[j]) {
                val[outs[j]->id] = outs[j];
                def[outs[j]->id] = n->op == IR_INPUT ? -1 : i;
                last[outs[j]->id] = n->op == IR_INPUT ? nn : i;
                root[outs[j]->id] = outs[j]->id;
            }
        if (is_view(n)) {
            root[n->out->id] = root[n->in[0]->id];
            assert_true(p->off[n->out->id] == p->off[n->in[0]->id]);
        } else if (n->op == IR_MASK_GEN_GRAD && n->nin == 5 && p->off[n->out->id] == p->off[n->in[4]->id]) {
            root[n->out->id] = root[n->in[4]->id];   /* in place: dx = acc + the generator's share */
            sums++;
        }
        for (int j = 0; j < n->nin; j++) {
            int r = root[n->in[j]->id];
            if (last[r] < i)
                last[r] = i;
        }
    }
    last[root[g->logits->id]] = nn;
    if (g->loss)
        last[root[g->loss->id]] = nn;
    const PlanLayout *L = p->L;
    for (int a = 0; a < nv; a++) {
        const IrValue *va = val[a];
        if (!va || root[a] != a)
            continue;
        long long a0 = p->off[a], a1 = a0 + ir_numel(va) * 4;
        assert_true(a0 >= 0 && a1 <= L->size);
        assert_int_equal(a0 % PLAN_ALIGN, 0);
        switch (va->kind) {
        case IR_V_PARAM: assert_true(a0 >= L->params && a1 <= L->params + L->params_bytes); continue;
        case IR_V_STATE: assert_true(a0 >= L->states && a1 <= L->states + L->states_bytes); continue;
        case IR_V_GRAD: assert_true(a0 >= L->grads && a1 <= L->grads + L->params_bytes); continue;
        default: assert_true(a0 >= L->work); break;
        }
        for (int b = a + 1; b < nv; b++) {
            const IrValue *vb = val[b];
            if (!vb || root[b] != b || vb->kind == IR_V_PARAM || vb->kind == IR_V_STATE || vb->kind == IR_V_GRAD)
                continue;
            if (def[a] > last[b] || def[b] > last[a])
                continue;   /* never alive together */
            long long b0 = p->off[b], b1 = b0 + ir_numel(vb) * 4;
            if (a0 < b1 && b0 < a1)
                fail_msg("%%%d [%lld, %lld) and %%%d [%lld, %lld) overlap while both are alive", a, a0, a1, b, b0, b1);
        }
    }
    free(def), free(last), free(val), free(root);
    return sums;
}

/* Plans and checks every train statement's graphs (as written and fused)
 * and every model's inference graph; returns check_plan's in-place sums. */
static int plan_file(const char *rel)
{
    int sums = 0;
    TestComp *t = tc_compile_source(rel, 1);
    if (t->errors)
        fail_msg("%s", t->diags);
    char err[512];
    for (int i = 0; i < t->c.checked.trains.n; i++) {
        const TrainInfo *tr = t->c.checked.trains.v[i];
        IrGraph *g = ir_lower(&t->c.arena, tr->model, tr, 8);
        if (pass_autodiff(&t->c.arena, g, err, sizeof err) != 0)
            continue;   /* models whose ops have no gradient rule yet */
        assert_int_equal(ir_verify(g, err, sizeof err), 0);
        PlanLayout *L = plan_layout(&t->c.arena, g, 16, 1);
        Plan *tp = plan_graph(&t->c.arena, L, g);
        Plan *fp = plan_graph(&t->c.arena, L, pass_fuse(&t->c.arena, g));
        Plan *ep = plan_graph(&t->c.arena, L, ir_lower(&t->c.arena, tr->model, NULL, 5));
        long long most = tp->work_bytes > ep->work_bytes ? tp->work_bytes : ep->work_bytes;
        L->size = L->work + (fp->work_bytes > most ? fp->work_bytes : most);
        check_plan(tp);
        sums += check_plan(fp);
        check_plan(ep);
    }
    for (int i = 0; i < t->c.checked.models.n; i++) {
        IrGraph *g = ir_lower(&t->c.arena, t->c.checked.models.v[i], NULL, 3);
        PlanLayout *L = plan_layout(&t->c.arena, g, 8, 0);
        Plan *p = plan_graph(&t->c.arena, L, g);
        L->size = L->work + p->work_bytes;
        check_plan(p);
    }
    tc_free(t);
    return sums;
}

static void test_examples(void **s)
{
    (void)s;
    plan_file("examples/fashion_standard.mwt");
    assert_int_equal(plan_file("examples/fashion.mwt"), 4);   /* one a masked conv */
    plan_file("examples/rescnn_synth.mwt");
    plan_file("examples/rescnn_synth_standard.mwt");
    plan_file("examples/rescnn_fashion.mwt");
    plan_file("examples/cifar_vgg.mwt");
    plan_file("examples/svhn_resnet.mwt");
    plan_file("tests/ir/residual.mwt");
}

static void test_stdlib(void **s)
{
    (void)s;
    plan_file("stdlib/models/resnet18.mwt");
    plan_file("stdlib/models/rescnn.mwt");
    plan_file("stdlib/models/simcnn.mwt");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_examples), cmocka_unit_test(test_stdlib) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
