// Figures for papers: a small vector canvas written as SVG and as PDF (no dependencies), and the
// charts basin draws on it.
#pragma once

#include <string>
#include <vector>

namespace basin {

struct Color {
    double r = 0, g = 0, b = 0; // 0..1
};
Color category_color(int index);  // distinct colours for groups (cycles after 10)
Color diverging_color(double t);  // t in [-1, 1]: blue, white, red
Color sequential_color(double t); // t in [0, 1]: dark purple to yellow (viridis)

enum class Anchor { Start, Middle, End };

// Shapes in points, origin at the top left, y downwards (as SVG); the PDF writer flips y.
class Canvas {
  public:
    Canvas(double width, double height) : width_(width), height_(height) {}
    void rect(double x, double y, double w, double h, Color fill, bool stroke = false);
    // tooltip: shown when the pointer rests on the circle (SVG only)
    void circle(double cx, double cy, double r, Color fill, const std::string& tooltip = {});
    void line(double x1, double y1, double x2, double y2, Color color, double width = 1);
    void text(double x, double y, const std::string& text, double size, Anchor anchor = Anchor::Start,
              double rotate_degrees = 0, Color color = {});
    std::string svg() const;
    std::string pdf() const; // fonts: the standard Helvetica, so ASCII text only (others become '?')
    // writes STEM.svg and STEM.pdf
    void save(const std::string& stem) const;

  private:
    struct Shape {
        enum Kind { Rect, Circle, Line, Text } kind;
        double a, b, c,
            d; // rect x y w h | circle cx cy r | line x1 y1 x2 y2 | text x y size rotate
        Color color;
        bool stroke = false;
        double width = 1;
        Anchor anchor = Anchor::Start;
        std::string text;
    };
    double width_, height_;
    std::vector<Shape> shapes_;
};

// A 2-D scatter plot, one colour per group, with a legend.
Canvas scatter_plot(const std::vector<std::pair<double, double>>& points, const std::vector<int>& group,
                    const std::vector<std::string>& group_names, const std::string& title, const std::string& x_label,
                    const std::string& y_label, const std::vector<std::string>& tooltips = {});

// A named series of (x, y) values: a line in line_plot, a group of values (y only) in strip_plot.
struct Series {
    std::string name;
    std::vector<double> x, y;
    bool bold = false; // drawn thicker (an average among its parts)
};

// Lines with markers, one colour per series, with a legend. symlog_x: x drawn as
// sign(x) log10(1 + |x|) (extrapolation to 32 and -31 next to 0..1).
Canvas line_plot(const std::vector<Series>& series, const std::string& title, const std::string& x_label,
                 const std::string& y_label, bool symlog_x = false);

// One column per group: every value as a point, over a box from the first to the third quartile
// with the median marked.
Canvas strip_plot(const std::vector<Series>& groups, const std::string& title, const std::string& y_label);

// Grouped bars: one group per category along x, one bar per series (its y[k] for category k).
Canvas bar_chart(const std::vector<std::string>& categories, const std::vector<Series>& series,
                 const std::string& title, const std::string& y_label);

struct Marker {
    double x = 0, y = 0;
    std::string label;
};
// A surface sampled on a regular grid (values[row j][column i] at x(i), y(j), both ends included)
// as a heat map with a colour bar, and labelled markers.
Canvas surface_map(const std::vector<std::vector<double>>& values, double x0, double x1, double y0, double y1,
                   const std::vector<Marker>& markers, const std::string& title, const std::string& value_label);

// A heatmap of a square matrix with values in [-1, 1] (rows and columns in the given order), with
// lines between groups, row names and a colour bar.
Canvas heatmap(const std::vector<std::vector<double>>& values, const std::vector<std::string>& names,
               const std::vector<int>& group, const std::string& title, double low, double high);

} // namespace basin
