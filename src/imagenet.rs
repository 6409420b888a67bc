//! Class names and the softmax/top-K that turn logits into a readable answer.
//!
//! The ImageNet list is the one torchvision attaches to every ImageNet-1k
//! weight (`torchvision/models/_meta.py`, `_IMAGENET_CATEGORIES`), in logit
//! order ([`imagenet_classes`]), embedded from `src/imagenet_classes.txt` (one name per line,
//! exactly 1000 distinct lines). timm's ImageNet-1k models use the same
//! class order. [`CIFAR10_CLASSES`] is CIFAR-10's order.

/// The embedded class file: 1000 lines, one torchvision class name each.
const IMAGENET_TXT: &str = include_str!("imagenet_classes.txt");

/// The 1000 ImageNet-1k class names in logit order (torchvision's spelling).
pub fn imagenet_classes() -> Vec<&'static str> {
    IMAGENET_TXT.lines().collect()
}

/// CIFAR-10's classes in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The class names for a classifier with `classes` outputs: ImageNet's for
/// 1000, CIFAR-10's for 10, `class 0`, `class 1`, … otherwise.
pub fn class_names(classes: usize) -> Vec<String> {
    match classes {
        1000 => imagenet_classes().into_iter().map(String::from).collect(),
        10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        n => (0..n).map(|i| format!("class {i}")).collect(),
    }
}

/// Softmax of `logits`, computed in f64 after subtracting the maximum (so
/// large logits do not overflow). An empty slice gives an empty vector.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let exps: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `k` largest entries of `probs` as `(index, value)`, largest first;
/// ties keep the lower index first. `k` larger than the length gives all.
pub fn top_k(probs: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| {
        probs[b]
            .partial_cmp(&probs[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    idx.into_iter().take(k).map(|i| (i, probs[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn exactly_1000_unique_nonempty_names() {
        let names = imagenet_classes();
        assert_eq!(names.len(), 1000);
        let set: HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), 1000, "class names must be unique");
        assert!(names.iter().all(|n| !n.trim().is_empty() && n.trim() == *n));
        // Spot checks against torchvision's list.
        assert_eq!(names[0], "tench");
        assert_eq!(names[1], "goldfish");
        assert_eq!(names[999], "toilet tissue");
    }

    #[test]
    fn softmax_matches_hand_values() {
        // softmax([0, ln 3]) = [1/4, 3/4]
        let p = softmax(&[0.0, 3f32.ln()]);
        assert!((p[0] - 0.25).abs() < 1e-7 && (p[1] - 0.75).abs() < 1e-7);
        // Large logits do not overflow.
        let p = softmax(&[1000.0, 1000.0]);
        assert_eq!(p, vec![0.5, 0.5]);
    }

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let t = top_k(&[0.1, 0.4, 0.4, 0.1], 3);
        assert_eq!(t, vec![(1, 0.4), (2, 0.4), (0, 0.1)]);
        assert_eq!(top_k(&[0.5], 5).len(), 1);
    }
}
