#include "basin/report/figure.h"

#include "basin/core/fs.h"
#include "basin/core/strings.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace basin {
namespace {

std::string num(double v) {
    return format_fixed(v, 2);
} // SVG coordinates

std::string hex(Color c) {
    char buf[8];
    auto b = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", b(c.r), b(c.g), b(c.b));
    return buf;
}

std::string pdf_string(const std::string& s) {
    std::string out = "(";
    for (unsigned char ch : s) {
        if (ch == '(' || ch == ')' || ch == '\\') out += '\\';
        out += (ch >= 32 && ch < 127) ? static_cast<char>(ch) : '?';
    }
    return out + ")";
}

// Helvetica's average advance is about 0.55 em; enough to centre and right-align labels.
double text_width(const std::string& s, double size) {
    return 0.55 * size * static_cast<double>(s.size());
}

std::string format_tick(double v) {
    return format_g(std::abs(v) < 1e-12 ? 0.0 : v, 3);
}

// about five round tick values covering [lo, hi]
std::vector<double> ticks(double lo, double hi) {
    const double span = hi - lo;
    if (!(span > 0)) return {lo};
    const double raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
    const double step = raw / mag < 2 ? 2 * mag : raw / mag < 5 ? 5 * mag : 10 * mag;
    std::vector<double> out;
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step)
        out.push_back(v);
    return out;
}

} // namespace

Color category_color(int index) {
    static const Color colors[] = {{0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                                   {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50},
                                   {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81}};
    return colors[((index % 10) + 10) % 10];
}

Color diverging_color(double t) {
    t = std::clamp(t, -1.0, 1.0);
    const Color blue{0.23, 0.30, 0.75}, white{0.97, 0.97, 0.97}, red{0.71, 0.02, 0.15};
    const Color& end = t < 0 ? blue : red;
    const double a = std::abs(t);
    return {white.r + (end.r - white.r) * a, white.g + (end.g - white.g) * a, white.b + (end.b - white.b) * a};
}

void Canvas::rect(double x, double y, double w, double h, Color fill, bool stroke) {
    shapes_.push_back({Shape::Rect, x, y, w, h, fill, stroke, 1, Anchor::Start, {}});
}
void Canvas::circle(double cx, double cy, double r, Color fill, const std::string& tooltip) {
    shapes_.push_back({Shape::Circle, cx, cy, r, 0, fill, false, 1, Anchor::Start, tooltip});
}
void Canvas::line(double x1, double y1, double x2, double y2, Color color, double width) {
    shapes_.push_back({Shape::Line, x1, y1, x2, y2, color, true, width, Anchor::Start, {}});
}
void Canvas::text(double x, double y, const std::string& text, double size, Anchor anchor, double rotate, Color color) {
    shapes_.push_back({Shape::Text, x, y, size, rotate, color, false, 1, anchor, text});
}

std::string Canvas::svg() const {
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width_) << "\" height=\"" << num(height_)
      << "\" viewBox=\"0 0 " << num(width_) << " " << num(height_)
      << "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (const auto& s : shapes_) {
        switch (s.kind) {
        case Shape::Rect:
            o << "<rect x=\"" << num(s.a) << "\" y=\"" << num(s.b) << "\" width=\"" << num(s.c) << "\" height=\""
              << num(s.d) << "\" fill=\"" << hex(s.color) << "\""
              << (s.stroke ? " stroke=\"black\" stroke-width=\"0.5\"" : "") << "/>\n";
            break;
        case Shape::Circle:
            o << "<circle cx=\"" << num(s.a) << "\" cy=\"" << num(s.b) << "\" r=\"" << num(s.c) << "\" fill=\""
              << hex(s.color) << "\" stroke=\"black\" stroke-width=\"0.4\"";
            if (s.text.empty())
                o << "/>\n";
            else
                o << "><title>" << xml_escape(s.text) << "</title></circle>\n"; // shown on hover
            break;
        case Shape::Line:
            o << "<line x1=\"" << num(s.a) << "\" y1=\"" << num(s.b) << "\" x2=\"" << num(s.c) << "\" y2=\"" << num(s.d)
              << "\" stroke=\"" << hex(s.color) << "\" stroke-width=\"" << num(s.width) << "\"/>\n";
            break;
        case Shape::Text: {
            const char* anchor = s.anchor == Anchor::Middle ? "middle" : s.anchor == Anchor::End ? "end" : "start";
            o << "<text x=\"" << num(s.a) << "\" y=\"" << num(s.b) << "\" font-size=\"" << num(s.c)
              << "\" text-anchor=\"" << anchor << "\" fill=\"" << hex(s.color) << "\"";
            if (s.d != 0) o << " transform=\"rotate(" << num(s.d) << " " << num(s.a) << " " << num(s.b) << ")\"";
            o << ">" << xml_escape(s.text) << "</text>\n";
            break;
        }
        }
    }
    o << "</svg>\n";
    return o.str();
}

std::string Canvas::pdf() const {
    std::ostringstream c; // content stream, y flipped
    auto y = [&](double v) { return num(height_ - v); };
    auto rgb = [&](Color k, const char* op) { return num(k.r) + " " + num(k.g) + " " + num(k.b) + " " + op + "\n"; };
    for (const auto& s : shapes_) {
        switch (s.kind) {
        case Shape::Rect:
            c << rgb(s.color, "rg") << num(s.a) << " " << y(s.b + s.d) << " " << num(s.c) << " " << num(s.d)
              << (s.stroke ? " re\n0 0 0 RG 0.5 w B\n" : " re f\n");
            break;
        case Shape::Circle: { // four Bezier arcs
            const double k = 0.5523 * s.c, cx = s.a, cy = height_ - s.b, r = s.c;
            c << rgb(s.color, "rg") << "0 0 0 RG 0.4 w\n"
              << num(cx + r) << " " << num(cy) << " m\n"
              << num(cx + r) << " " << num(cy + k) << " " << num(cx + k) << " " << num(cy + r) << " " << num(cx) << " "
              << num(cy + r) << " c\n"
              << num(cx - k) << " " << num(cy + r) << " " << num(cx - r) << " " << num(cy + k) << " " << num(cx - r)
              << " " << num(cy) << " c\n"
              << num(cx - r) << " " << num(cy - k) << " " << num(cx - k) << " " << num(cy - r) << " " << num(cx) << " "
              << num(cy - r) << " c\n"
              << num(cx + k) << " " << num(cy - r) << " " << num(cx + r) << " " << num(cy - k) << " " << num(cx + r)
              << " " << num(cy) << " c\nB\n";
            break;
        }
        case Shape::Line:
            c << rgb(s.color, "RG") << num(s.width) << " w " << num(s.a) << " " << y(s.b) << " m " << num(s.c) << " "
              << y(s.d) << " l S\n";
            break;
        case Shape::Text: {
            const double w = text_width(s.text, s.c);
            const double shift = s.anchor == Anchor::Middle ? w / 2 : s.anchor == Anchor::End ? w : 0;
            const double angle = -s.d * M_PI / 180, co = std::cos(angle), si = std::sin(angle);
            const double x0 = s.a - shift * co, y0 = (height_ - s.b) - shift * si;
            c << "BT " << rgb(s.color, "rg") << "/F1 " << num(s.c) << " Tf " << num(co) << " " << num(si) << " "
              << num(-si) << " " << num(co) << " " << num(x0) << " " << num(y0) << " Tm " << pdf_string(s.text)
              << " Tj ET\n";
            break;
        }
        }
    }
    const std::string content = c.str();
    std::vector<std::string> objects = {
        "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + num(width_) + " " + num(height_) +
            "] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "endstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"};
    std::string out = "%PDF-1.4\n";
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < objects.size(); ++i) {
        offsets.push_back(out.size());
        out += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
    }
    const std::size_t xref = out.size();
    out += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
    for (std::size_t off : offsets) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
        out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return out;
}

void Canvas::save(const std::string& stem) const {
    write_text_atomically(stem + ".svg", svg());
    write_text_atomically(stem + ".pdf", pdf());
}

namespace {

// Plot axes: a data box mapped onto a square of the canvas, with grid lines, ticks and labels.
// symlog_x: x is drawn as sign(x) log10(1 + |x|), which keeps 0..1 readable next to 32.
struct Frame {
    double left = 60, top = 40, width = 360, height = 360;
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    bool symlog_x = false;

    static double symlog(double x) { return x < 0 ? -std::log10(1 - x) : std::log10(1 + x); }
    double tx(double x) const { return symlog_x ? symlog(x) : x; }
    double px(double x) const { return left + (tx(x) - tx(x0)) / (tx(x1) - tx(x0)) * width; }
    double py(double y) const { return top + height - (y - y0) / (y1 - y0) * height; }

    // pads the data range by 6% (or widens an empty one) so points do not sit on the border
    void fit(double xlo, double xhi, double ylo, double yhi) {
        auto pad = [](double& lo, double& hi) {
            const double span = hi > lo ? hi - lo : std::max(1e-12, std::abs(lo));
            lo -= 0.06 * span, hi += 0.06 * span;
        };
        if (symlog_x) {
            x0 = xlo, x1 = xhi;
            if (!(x1 > x0)) x0 -= 1, x1 += 1;
        } else {
            x0 = xlo, x1 = xhi, pad(x0, x1);
        }
        y0 = ylo, y1 = yhi, pad(y0, y1);
    }

    std::vector<double> x_ticks() const {
        if (!symlog_x) return ticks(x0, x1);
        std::vector<double> out;
        for (double v :
             {-1000.0, -300.0, -100.0, -30.0, -10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0})
            if (v >= x0 && v <= x1) out.push_back(v);
        return out;
    }

    void draw(Canvas& c, const std::string& title, const std::string& x_label, const std::string& y_label,
              bool x_ticks_shown = true) const {
        c.text(left + width / 2, 24, title, 13, Anchor::Middle);
        c.rect(left, top, width, height, {1, 1, 1}, true);
        const Color grey{0.85, 0.85, 0.85}, dark{0.3, 0.3, 0.3};
        if (x_ticks_shown)
            for (double t : x_ticks()) {
                c.line(px(t), top, px(t), top + height, grey, 0.5);
                c.text(px(t), top + height + 14, format_tick(t), 9, Anchor::Middle, 0, dark);
            }
        for (double t : ticks(y0, y1)) {
            c.line(left, py(t), left + width, py(t), grey, 0.5);
            c.text(left - 4, py(t) + 3, format_tick(t), 9, Anchor::End, 0, dark);
        }
        c.text(left + width / 2, top + height + 34, x_label, 11, Anchor::Middle);
        c.text(16, top + height / 2, y_label, 11, Anchor::Middle, -90);
    }

    void legend(Canvas& c, const std::vector<std::string>& names) const {
        for (std::size_t g = 0; g < names.size(); ++g) {
            const double ly = top + 10 + 16 * static_cast<double>(g);
            c.circle(left + width + 30, ly, 4.5, category_color(static_cast<int>(g)));
            c.text(left + width + 40, ly + 3.5, names[g], 10);
        }
    }
};

double legend_width(const std::vector<std::string>& names) {
    double w = 0;
    for (const auto& n : names)
        w = std::max(w, text_width(n, 10));
    return names.empty() ? 0 : 50 + w;
}

} // namespace

Canvas scatter_plot(const std::vector<std::pair<double, double>>& points, const std::vector<int>& group,
                    const std::vector<std::string>& group_names, const std::string& title, const std::string& x_label,
                    const std::string& y_label, const std::vector<std::string>& tooltips) {
    Frame f;
    Canvas c(f.left + f.width + 20 + std::max(160.0, legend_width(group_names)), f.top + f.height + 50);
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const auto& [x, y] : points)
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    f.fit(x0, x1, y0, y1);
    f.draw(c, title, x_label, y_label);
    for (std::size_t i = 0; i < points.size(); ++i)
        c.circle(f.px(points[i].first), f.py(points[i].second), 4.5, category_color(group[i]),
                 i < tooltips.size() ? tooltips[i] : std::string());
    f.legend(c, group_names);
    return c;
}

Canvas line_plot(const std::vector<Series>& series, const std::string& title, const std::string& x_label,
                 const std::string& y_label, bool symlog_x) {
    Frame f;
    f.symlog_x = symlog_x;
    std::vector<std::string> names;
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const auto& s : series) {
        names.push_back(s.name);
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!std::isfinite(s.y[i])) continue;
            x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
        }
    }
    if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    Canvas c(f.left + f.width + 20 + std::max(120.0, legend_width(names)), f.top + f.height + 50);
    f.fit(x0, x1, y0, y1);
    f.draw(c, title, x_label, y_label);
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        const Color color = category_color(int(k));
        for (std::size_t i = 0; i + 1 < s.x.size(); ++i)
            if (std::isfinite(s.y[i]) && std::isfinite(s.y[i + 1]))
                c.line(f.px(s.x[i]), f.py(s.y[i]), f.px(s.x[i + 1]), f.py(s.y[i + 1]), color, s.bold ? 2.5 : 1.5);
        for (std::size_t i = 0; i < s.x.size(); ++i)
            if (std::isfinite(s.y[i]))
                c.circle(f.px(s.x[i]), f.py(s.y[i]), s.bold ? 3 : 2.2, color,
                         s.name + ": " + format_tick(s.x[i]) + ", " + std::to_string(s.y[i]));
    }
    f.legend(c, names);
    return c;
}

Canvas strip_plot(const std::vector<Series>& groups, const std::string& title, const std::string& y_label) {
    Frame f;
    f.width = std::max(200.0, 110.0 * double(groups.size()));
    double y0 = 1e300, y1 = -1e300;
    for (const auto& g : groups)
        for (double v : g.y)
            if (std::isfinite(v)) y0 = std::min(y0, v), y1 = std::max(y1, v);
    if (y0 > y1) y0 = 0, y1 = 1;
    Canvas c(f.left + f.width + 20, f.top + f.height + 50);
    f.fit(0, double(groups.size()), y0, y1);
    f.x0 = 0, f.x1 = double(groups.size());
    f.draw(c, title, "", y_label, /*x_ticks_shown=*/false);
    for (std::size_t k = 0; k < groups.size(); ++k) {
        const double centre = f.px(double(k) + 0.5);
        const Color color = category_color(int(k));
        std::vector<double> v;
        for (double y : groups[k].y)
            if (std::isfinite(y)) v.push_back(y);
        std::sort(v.begin(), v.end());
        if (!v.empty()) { // box: quartiles and median (linear interpolation between order statistics)
            auto q = [&](double p) {
                const double pos = p * double(v.size() - 1);
                const std::size_t i = std::size_t(pos);
                return i + 1 < v.size() ? v[i] + (v[i + 1] - v[i]) * (pos - double(i)) : v[i];
            };
            const double half = 0.3 * f.width / double(groups.size());
            c.rect(centre - half, f.py(q(0.75)), 2 * half, f.py(q(0.25)) - f.py(q(0.75)), {0.95, 0.95, 0.95}, true);
            c.line(centre - half, f.py(q(0.5)), centre + half, f.py(q(0.5)), {0, 0, 0}, 2);
        }
        for (std::size_t i = 0; i < v.size(); ++i) { // points spread sideways so ties stay visible
            const double jitter = (double((i * 37) % 11) / 10.0 - 0.5) * 0.25 * f.width / double(groups.size());
            c.circle(centre + jitter, f.py(v[i]), 3, color, groups[k].name + ": " + std::to_string(v[i]));
        }
        c.text(centre, f.top + f.height + 16, groups[k].name, 10, Anchor::Middle);
    }
    return c;
}

Canvas bar_chart(const std::vector<std::string>& categories, const std::vector<Series>& series,
                 const std::string& title, const std::string& y_label) {
    Frame f;
    f.width = std::max(240.0, 70.0 * double(categories.size()) * std::max<std::size_t>(1, series.size()) / 2);
    std::vector<std::string> names;
    double hi = 0;
    for (const auto& s : series) {
        names.push_back(s.name);
        for (double v : s.y)
            if (std::isfinite(v)) hi = std::max(hi, v);
    }
    Canvas c(f.left + f.width + 20 + std::max(120.0, legend_width(names)), f.top + f.height + 60);
    f.fit(0, double(categories.size()), 0, hi > 0 ? hi : 1);
    f.x0 = 0, f.x1 = double(categories.size()), f.y0 = 0;
    f.draw(c, title, "", y_label, /*x_ticks_shown=*/false);
    const double slot = f.width / double(std::max<std::size_t>(1, categories.size()));
    const double bar = 0.8 * slot / double(std::max<std::size_t>(1, series.size()));
    for (std::size_t k = 0; k < categories.size(); ++k) {
        for (std::size_t s = 0; s < series.size(); ++s) {
            const double v = k < series[s].y.size() ? series[s].y[k] : 0;
            if (!std::isfinite(v)) continue;
            const double x = f.left + slot * double(k) + 0.1 * slot + bar * double(s);
            c.rect(x, f.py(v), bar, f.py(0) - f.py(v), category_color(int(s)));
            c.circle(x + bar / 2, f.py(v), 1.5, category_color(int(s)),
                     series[s].name + ", " + categories[k] + ": " + std::to_string(v));
        }
        c.text(f.left + slot * (double(k) + 0.5), f.top + f.height + 14, categories[k], 9, Anchor::Middle);
    }
    f.legend(c, names);
    return c;
}

Color sequential_color(double t) { // viridis anchors
    static const Color anchors[] = {{0.267, 0.005, 0.329},
                                    {0.231, 0.322, 0.545},
                                    {0.129, 0.569, 0.549},
                                    {0.369, 0.788, 0.384},
                                    {0.993, 0.906, 0.144}};
    t = std::clamp(std::isfinite(t) ? t : 1.0, 0.0, 1.0) * 4;
    const int i = std::min(3, int(t));
    const double a = t - i;
    const Color &p = anchors[i], &q = anchors[i + 1];
    return {p.r + (q.r - p.r) * a, p.g + (q.g - p.g) * a, p.b + (q.b - p.b) * a};
}

Canvas surface_map(const std::vector<std::vector<double>>& values, double x0, double x1, double y0, double y1,
                   const std::vector<Marker>& markers, const std::string& title, const std::string& value_label) {
    const std::size_t ny = values.size(), nx = ny ? values[0].size() : 0;
    Frame f;
    f.x0 = x0, f.x1 = x1, f.y0 = y0, f.y1 = y1;
    Canvas c(f.left + f.width + 110, f.top + f.height + 50);
    double lo = 1e300, hi = -1e300;
    for (const auto& row : values)
        for (double v : row)
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (lo > hi) lo = 0, hi = 1;
    f.draw(c, title, "u", "v");
    const double cw = f.width / double(std::max<std::size_t>(1, nx - (nx > 1))),
                 ch = f.height / double(std::max<std::size_t>(1, ny - (ny > 1)));
    // each grid value is the centre of its cell; the cells at the border are clipped to the box
    for (std::size_t j = 0; j < ny; ++j)
        for (std::size_t i = 0; i < nx; ++i) {
            const double cx = nx > 1 ? f.left + f.width * double(i) / double(nx - 1) : f.left + f.width / 2;
            const double cy = ny > 1 ? f.top + f.height - f.height * double(j) / double(ny - 1) : f.top + f.height / 2;
            const double l = std::max(f.left, cx - cw / 2), r = std::min(f.left + f.width, cx + cw / 2);
            const double t = std::max(f.top, cy - ch / 2), b = std::min(f.top + f.height, cy + ch / 2);
            c.rect(l, t, r - l + 0.3, b - t + 0.3, sequential_color(hi > lo ? (values[j][i] - lo) / (hi - lo) : 0.5));
        }
    for (const auto& m : markers) {
        c.circle(f.px(m.x), f.py(m.y), 5, {1, 1, 1});
        c.circle(f.px(m.x), f.py(m.y), 3.5, {0, 0, 0});
        c.text(f.px(m.x) + 7, f.py(m.y) - 6, m.label, 11, Anchor::Start, 0, {1, 1, 1});
    }
    const double bx = f.left + f.width + 20;
    for (int k = 0; k < 50; ++k)
        c.rect(bx, f.top + f.height * k / 50, 14, f.height / 50 + 0.5, sequential_color(1 - (k + 0.5) / 50));
    c.text(bx + 18, f.top + 8, format_tick(hi), 9);
    c.text(bx + 18, f.top + f.height, format_tick(lo), 9);
    c.text(bx + 7, f.top + f.height + 20, value_label, 9, Anchor::Middle);
    return c;
}

Canvas heatmap(const std::vector<std::vector<double>>& values, const std::vector<std::string>& names,
               const std::vector<int>& group, const std::string& title, double low, double high) {
    const std::size_t n = values.size();
    std::size_t longest = 0;
    for (const auto& s : names)
        longest = std::max(longest, s.size());
    const double cell = std::clamp(420.0 / std::max<std::size_t>(1, n), 2.0, 28.0);
    const bool labels = cell >= 7;
    const double font = std::min(9.0, cell * 0.8);
    const double left = 20 + (labels ? text_width(std::string(longest, 'x'), font) : 0) + 8, top = 40;
    const double side = cell * static_cast<double>(n);
    Canvas c(left + side + 90, top + side + 30);
    c.text(left + side / 2, 24, title, 13, Anchor::Middle);
    auto shade = [&](double v) { return diverging_color(high > low ? 2 * (v - low) / (high - low) - 1 : 0); };
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j)
            c.rect(left + j * cell, top + i * cell, cell, cell, shade(values[i][j]));
        if (labels) c.text(left - 4, top + (i + 0.5) * cell + font / 3, names[i], font, Anchor::End);
    }
    for (std::size_t i = 1; i < n; ++i)
        if (group[i] != group[i - 1]) {
            c.line(left, top + i * cell, left + side, top + i * cell, {0, 0, 0}, 1);
            c.line(left + i * cell, top, left + i * cell, top + side, {0, 0, 0}, 1);
        }
    // colour bar
    const double bx = left + side + 20, bh = std::max(side, 120.0);
    for (int k = 0; k < 50; ++k) {
        const double v = high - (high - low) * (k + 0.5) / 50;
        c.rect(bx, top + bh * k / 50, 14, bh / 50 + 0.5, shade(v));
    }
    c.text(bx + 18, top + 8, format_tick(high), 9);
    c.text(bx + 18, top + bh, format_tick(low), 9);
    return c;
}

} // namespace basin
