//! SVG plot of time-to-first-failure curves for `csdci sweep`.
//!
//! Draws one Kaplan–Meier step curve per sweep arm (fraction of runs still
//! clean against seconds of workload) with a legend, as a self-contained
//! 800×500 SVG string. Text is emitted as SVG `<text>` elements, so no system
//! fonts are needed to render it.

use plotters::prelude::*;

use super::survival::KaplanMeier;

/// Width of the image in pixels.
const WIDTH: u32 = 800;
/// Height of the image in pixels.
const HEIGHT: u32 = 500;

/// Line colours, cycled through by curve index (a colour-blind-friendly set).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// One curve to draw: a labelled survival curve and how far to extend it.
#[derive(Clone, Copy, Debug)]
pub struct Curve<'a> {
    /// Legend text for the curve (e.g. the arm's settings).
    pub label: &'a str,
    /// The survival curve itself.
    pub km: &'a KaplanMeier,
    /// The longest observed time: the curve is drawn flat up to here.
    pub max_t: f64,
}

/// Renders the curves as an 800×500 SVG document titled `title`.
///
/// The x axis is "seconds of workload", the y axis "fraction of runs still
/// clean" from 0 to 1. Each curve is a step line that holds its value until
/// the next failure time and is extended to its `max_t`; the legend names each
/// curve by its label. An empty list, or curves without points, still give a
/// valid SVG with just the axes. Errors come from the drawing backend.
pub fn km_svg(title: &str, curves: &[Curve<'_>]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, curves)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Draws the whole chart onto `root`.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    curves: &[Curve<'_>],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_extent(curves), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds of workload")
        .y_desc("fraction of runs still clean")
        .draw()
        .map_err(err)?;
    let mut labelled = false;
    for (i, curve) in curves.iter().enumerate() {
        let steps = step_points(curve);
        if steps.is_empty() {
            continue;
        }
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(steps, colour.stroke_width(2)))
            .map_err(err)?
            .label(curve.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 2), (x + 18, y + 2)], colour.filled()));
        labelled = true;
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// The right end of the x axis: the furthest curve end, or 1 when there is none.
fn x_extent(curves: &[Curve<'_>]) -> f64 {
    let end = curves.iter().map(curve_end).fold(0.0_f64, f64::max);
    if end.is_finite() && end > 0.0 {
        end
    } else {
        1.0
    }
}

/// Where a curve stops: its `max_t`, or its last step if that is later or
/// `max_t` is not a finite number.
fn curve_end(curve: &Curve<'_>) -> f64 {
    let last = curve
        .km
        .points
        .iter()
        .map(|p| p.t)
        .filter(|t| t.is_finite())
        .fold(0.0_f64, f64::max);
    if curve.max_t.is_finite() {
        curve.max_t.max(last)
    } else {
        last
    }
}

/// The vertices of a curve's step line: flat until each failure time, then a
/// vertical drop, then flat to the curve's end. Empty for a curve without
/// points; points with a non-finite time or survival are skipped.
fn step_points(curve: &Curve<'_>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(2 * curve.km.points.len() + 1);
    let usable = curve
        .km
        .points
        .iter()
        .filter(|p| p.t.is_finite() && p.survival.is_finite());
    for p in usable {
        let s = p.survival.clamp(0.0, 1.0);
        if let Some(&(_, prev)) = out.last() {
            out.push((p.t, prev));
        }
        out.push((p.t, s));
    }
    if let Some(&(_, s)) = out.last() {
        out.push((curve_end(curve), s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::survival::{KmPoint, Obs, kaplan_meier};
    use super::*;

    fn fails(times: &[f64]) -> Vec<Obs> {
        times
            .iter()
            .map(|&t| Obs {
                time_s: t,
                failed: true,
            })
            .collect()
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    /// Curve lines: the axes and ticks are 1-pixel polylines, curves 2-pixel.
    fn lines(svg: &str) -> usize {
        svg.split('<')
            .filter(|el| el.starts_with("polyline") || el.starts_with("path"))
            .filter(|el| el.contains("stroke-width=\"2\""))
            .count()
    }

    #[test]
    fn svg_has_labels_axes_and_one_line_per_curve() {
        let a = kaplan_meier(&fails(&[10.0, 20.0, 30.0]), 0.95);
        let mut b_obs = fails(&[5.0, 50.0]);
        b_obs.push(Obs {
            time_s: 90.0,
            failed: false,
        });
        let b = kaplan_meier(&b_obs, 0.95);
        let curves = [
            Curve {
                label: "csd_lock_timeout=5",
                km: &a,
                max_t: 30.0,
            },
            Curve {
                label: "nr_cpus=8",
                km: &b,
                max_t: 90.0,
            },
        ];
        let svg = km_svg("scftorture sweep", &curves).expect("renders");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("width=\"800\"") && svg.contains("height=\"500\""));
        for text in ["scftorture sweep", "csd_lock_timeout=5", "nr_cpus=8"] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.contains("seconds of workload"));
        assert!(svg.contains("fraction of runs still clean"));
        assert_eq!(lines(&svg), curves.len());
        assert!(count(&svg, "<text") >= 5);
    }

    #[test]
    fn svg_without_curves_is_still_valid() {
        for svg in [
            km_svg("nothing yet", &[]).expect("renders"),
            km_svg(
                "empty",
                &[Curve {
                    label: "ghost",
                    km: &KaplanMeier { points: vec![] },
                    max_t: f64::NAN,
                }],
            )
            .expect("renders"),
        ] {
            assert!(svg.starts_with("<svg"));
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("seconds of workload"));
            assert_eq!(lines(&svg), 0);
        }
    }

    #[test]
    fn labels_are_escaped() {
        let km = kaplan_meier(&fails(&[1.0]), 0.95);
        let svg = km_svg(
            "a < b & c",
            &[Curve {
                label: "x<y",
                km: &km,
                max_t: 2.0,
            }],
        )
        .expect("renders");
        assert!(svg.contains("x&lt;y") && svg.contains("a &lt; b &amp; c"));
        assert!(!svg.contains("x<y"));
    }

    #[test]
    fn step_line_holds_then_drops_and_extends() {
        let km = kaplan_meier(&fails(&[10.0, 20.0]), 0.95);
        let curve = Curve {
            label: "a",
            km: &km,
            max_t: 35.0,
        };
        let want = vec![
            (0.0, 1.0),
            (10.0, 1.0),
            (10.0, 0.5),
            (20.0, 0.5),
            (20.0, 0.0),
            (35.0, 0.0),
        ];
        assert_eq!(step_points(&curve), want);
        // A max_t before the last failure (or NaN) stops at the last failure.
        let short = Curve {
            label: "a",
            km: &km,
            max_t: 5.0,
        };
        assert_eq!(step_points(&short).last(), Some(&(20.0, 0.0)));
        assert_eq!(x_extent(&[short, curve]), 35.0);
        let odd = KaplanMeier {
            points: vec![KmPoint {
                t: f64::NAN,
                survival: 0.5,
                lower: 0.0,
                upper: 1.0,
                at_risk: 1,
            }],
        };
        assert!(
            step_points(&Curve {
                label: "odd",
                km: &odd,
                max_t: f64::INFINITY
            })
            .is_empty()
        );
        assert_eq!(x_extent(&[]), 1.0);
    }
}
