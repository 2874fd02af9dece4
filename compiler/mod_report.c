/* The modularize report (run_modularize.h): a table, the JSON object of
 * LANGUAGE.md section 3, and SVG charts. Output only: every figure was
 * computed by run_modularize. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "json.h"
#include "names.h"
#include "run_modularize.h"

/* A recall: NaN where the class has no test images to measure it on. */
static void put_rate(FILE *out, double v)
{
    if (isnan(v))
        fprintf(out, "null");
    else
        fprintf(out, "%.4f", v);
}

/* The same as a percentage in 6 columns for the table: "   n/a" for NaN. */
static const char *pct(char buf[16], double v)
{
    snprintf(buf, 16, isnan(v) ? "   n/a" : "%5.1f%%", 100 * v);
    return buf;
}

/* s as XML character data: markup characters escaped, everything past ASCII
 * as a character reference, and what XML cannot hold (control characters,
 * bytes that are not UTF-8) as U+FFFD, so that any class name leaves the SVG
 * well-formed. */
static void xml_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned long c = name_utf8_next(&p);
        int bad = (c < 0x20 && c != '\t') || (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff || c > 0x10ffff;
        if (bad)
            fputs("&#xfffd;", f);
        else if (c == '&')
            fputs("&amp;", f);
        else if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c < 0x80)
            fputc((int)c, f);
        else
            fprintf(f, "&#x%lx;", c);
    }
}

void mod_report_text(FILE *out, const ModReport *r)
{
    fprintf(out, "modules of %s on %s: threshold %.2f, generators %s\n", r->model, r->dataset, r->threshold,
            r->generators ? "kept" : "dropped");
    int w = 14;   /* the name column, as wide as the widest name */
    for (int c = 0; r->names && c < r->classes; c++)
        w = name_width(r->names[c]) > w ? name_width(r->names[c]) : w;
    fputs("  class  ", out);
    name_pad(out, "name", w);
    fprintf(out, "  kernels    KRR  recall        FLOPs     params\n");
    for (int c = 0; c < r->classes; c++) {
        const ModuleReport *m = &r->modules[c];
        char rec[16];
        fprintf(out, "  %5d  ", c);
        name_pad(out, r->names ? r->names[c] : "", w);
        fprintf(out, " %8lld  %5.3f  %s  %11lld %10lld%s\n", m->kernels, m->krr, pct(rec, m->recall), m->flops, m->params,
                isnan(m->recall) ? "  (no test images of its class)" : m->recall < 0.5 ? "  (loses its own class)" : "");
    }
    fprintf(out, "  model: test accuracy %.2f%%, %lld FLOPs, %lld params, %lld masked kernels\n", 100 * r->accuracy,
            r->flops, r->params, r->masked_kernels);
    fprintf(out, "  modules composed: %.2f%% calibrated, %.2f%% by raw logits\n", 100 * r->modular_accuracy,
            100 * r->modular_accuracy_raw);
    /* modules that together beat the model they were cut from read as a
     * finding; they are the calibration's doing (DESIGN.md: a logistic
     * regression on each module's logits), which on a short run reads the
     * logits better than the model's own last layer does yet */
    if (r->modular_accuracy > r->accuracy + 0.01)
        fprintf(out, "  (composed above the model itself: each module's calibration is a classifier fitted on its "
                     "logits, and it reads them better than the model's own argmax, as while the model's last layer "
                     "is still undertrained)\n");
    fprintf(out, "  KRR %.4f  cohesion %.4f  coupling %.4f\n", r->krr, r->cohesion, r->coupling);
    if (r->stored)
        fprintf(out, "  (accuracies, recall and cohesion as the last modularize measured and stored them)\n");
    if (r->nsweep) {
        fprintf(out, "  sweep on %5lld test images (%.1f s)  threshold    KRR  recall  composed  raw\n",
                r->sweep_images, r->sweep_seconds);
        for (int i = 0; i < r->nsweep; i++) {
            char rec[16];
            fprintf(out, "                                       %9.2f  %5.3f  %s  %7.1f%%  %5.1f%%\n", r->sweep_t[i],
                    r->sweep_krr[i], pct(rec, r->sweep_recall[i]), 100 * r->sweep_acc[i], 100 * r->sweep_raw[i]);
        }
    }
}

void mod_report_json(FILE *out, const ModReport *r)
{
    fprintf(out, "{ \"model\": ");
    json_str(out, r->model);
    fprintf(out, ", \"dataset\": ");
    json_str(out, r->dataset);
    fprintf(out, ", \"classes\": %d,\n  \"accuracy\": %.4f, \"modular_accuracy\": %.4f, \"modular_accuracy_raw\": %.4f,\n"
                 "  \"masked_kernels\": %lld, \"threshold\": %g, \"generators\": \"%s\", \"krr\": %.4f,\n"
                 "  \"cohesion\": %.4f, \"coupling\": %.4f, \"flops\": %lld, \"params\": %lld, \"stored\": %s,\n"
                 "  \"modules\": [",
            r->classes, r->accuracy, r->modular_accuracy, r->modular_accuracy_raw, r->masked_kernels, r->threshold,
            r->generators ? "keep" : "drop", r->krr, r->cohesion, r->coupling, r->flops, r->params,
            r->stored ? "true" : "false");
    for (int c = 0; c < r->classes; c++) {
        const ModuleReport *m = &r->modules[c];
        fprintf(out, "%s\n    { \"class\": %d, \"name\": ", c ? "," : "", c);
        json_str(out, r->names ? r->names[c] : "");
        fprintf(out, ", \"kernels\": %lld, \"krr\": %.4f, \"flops\": %lld, \"params\": %lld, \"recall\": ",
                m->kernels, m->krr, m->flops, m->params);
        put_rate(out, m->recall);
        fprintf(out, " }");
    }
    fprintf(out, " ]");
    if (r->nsweep) {
        fprintf(out, ",\n  \"sweep_seconds\": %.2f, \"sweep_images\": %lld, \"sweep\": [", r->sweep_seconds,
                r->sweep_images);
        for (int i = 0; i < r->nsweep; i++) {
            fprintf(out, "%s\n    { \"threshold\": %.2f, \"krr\": %.4f, \"recall\": ", i ? "," : "", r->sweep_t[i],
                    r->sweep_krr[i]);
            put_rate(out, r->sweep_recall[i]);
            fprintf(out, ", \"modular_accuracy\": %.4f, \"modular_accuracy_raw\": %.4f }", r->sweep_acc[i],
                    r->sweep_raw[i]);
        }
        fprintf(out, " ]");
    }
    fprintf(out, " }\n");
}

/* A class's label under its bar: its name, else its number. */
static void class_label(FILE *f, const ModReport *r, int c)
{
    if (r->names && r->names[c] && r->names[c][0])
        xml_text(f, r->names[c]);
    else
        fprintf(f, "%d", c);
}

/* Two bar charts (KRR and own-class recall per class) and, after a sweep,
 * KRR, recall and composed accuracy against the threshold. Up to 10 classes
 * the bars are 60 px apart with their values and names; more classes
 * narrow them to 12 px (the image widens past 720 px: 100 classes, CIFAR-100's,
 * are 1320 px, where 600 px gave bars -2 px wide), with class numbers turned
 * on their side and no values (the text and JSON reports give them). */
int mod_report_svg(const char *path, const ModReport *r, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    int n = r->classes > 0 ? r->classes : 1, bw = 600 / n;
    bw = bw > 60 ? 60 : bw < 12 ? 12 : bw;
    int wide = bw >= 40, gap = wide ? 8 : 2;   /* at most 256 classes (sema_data.c): 3192 px */
    int W = 120 + n * bw > 720 ? 120 + n * bw : 720, H = r->nsweep ? 760 : 420;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"20\" y=\"22\" font-size=\"14\">");
    xml_text(f, r->model);
    fputs(" on ", f);
    xml_text(f, r->dataset);
    fprintf(f, ": modules at threshold %.2f (KRR %.3f, composed %.1f%%)</text>\n", r->threshold, r->krr,
            100 * r->modular_accuracy);
    const char *what[2] = { "KRR", "own-class recall" }, *color[2] = { "#4477aa", "#ee6677" };
    for (int chart = 0; chart < 2; chart++) {
        int top = 50 + chart * 180, h = 130;
        int none = 0;   /* classes without test images: marked grey where bars are narrow */
        for (int c = 0; c < r->classes && chart && !wide; c++)
            none += isnan(r->modules[c].recall);
        fprintf(f, "<text x=\"20\" y=\"%d\">%s%s</text>\n", top - 6, what[chart],
                none ? " (grey: no test images of the class)" : "");
        fprintf(f, "<line x1=\"60\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", top + h, W - 40, top + h);
        for (int c = 0; c < r->classes; c++) {
            double v = chart ? r->modules[c].recall : r->modules[c].krr;
            int bh = isnan(v) ? 0 : (int)(v * h + 0.5), x = 70 + c * bw;
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", x, top + h - bh,
                    bw - gap, bh, color[chart]);
            if (wide) {
                if (isnan(v))   /* no test images of the class */
                    fprintf(f, "<text x=\"%d\" y=\"%d\">n/a</text>\n", x, top + h - 3);
                else
                    fprintf(f, "<text x=\"%d\" y=\"%d\">%.2f</text>\n", x, top + h - bh - 3, v);
                fprintf(f, "<text x=\"%d\" y=\"%d\">", x, top + h + 13);
                class_label(f, r, c);
                fputs("</text>\n", f);
            } else {
                if (isnan(v))   /* a grey mark where a bar would be: no test images */
                    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"3\" fill=\"#bbbbbb\"/>\n", x,
                            top + h - 3, bw - gap);
                fprintf(f, "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"end\" font-size=\"9\">%d</text>\n",
                        x + (bw - gap) / 2 + 3, top + h + 4, c);
            }
        }
    }
    if (r->nsweep) {
        int top = 430, h = 260, x0 = 70, x1 = W - 60;
        fprintf(f, "<text x=\"20\" y=\"%d\">threshold sweep: KRR (blue), recall (red), composed accuracy (green)</text>\n",
                top - 6);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", x0, top,
                x1 - x0, h);
        const double *ys[3] = { r->sweep_krr, r->sweep_recall, r->sweep_acc };
        const char *cs[3] = { "#4477aa", "#ee6677", "#228833" };
        for (int k = 0; k < 3; k++) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", cs[k]);
            for (int i = 0; i < r->nsweep; i++)
                if (!isnan(ys[k][i]))   /* recall: NaN when no class had test images */
                    fprintf(f, "%d,%d ", x0 + (int)((r->sweep_t[i] - 0.5) / 0.45 * (x1 - x0)),
                            top + h - (int)(ys[k][i] * h));
            fprintf(f, "\"/>\n");
        }
        for (int i = 0; i < r->nsweep; i++)
            fprintf(f, "<text x=\"%d\" y=\"%d\">%.2f</text>\n", x0 + (int)((r->sweep_t[i] - 0.5) / 0.45 * (x1 - x0)) - 10,
                    top + h + 14, r->sweep_t[i]);
    }
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
