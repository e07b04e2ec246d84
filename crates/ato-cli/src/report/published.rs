//! Published results placed beside ours where the same (dataset, model, method) row exists.
//! Sources and caveats are in `shared/PUBLISHED.md` (repeated in paper/README.md).

/// One published result.
pub struct Published {
    pub dataset: &'static str,
    pub model: &'static str,
    pub method: &'static str,
    pub top1: f64,
    /// FLOPs (conv + fc MACs) reduction in percent.
    pub flops_reduction: f64,
    pub source: &'static str,
}

/// The rows of `PUBLISHED.md` that match models of this project.
pub const PUBLISHED: &[Published] = &[
    Published {
        dataset: "cifar10",
        model: "resnet56",
        method: "ato",
        top1: 93.45,
        flops_reduction: 55.0,
        source: "ATO (CVPR 2024), via a third-party table (weak)",
    },
    Published {
        dataset: "imagenet",
        model: "resnet50",
        method: "ato",
        top1: 74.68,
        flops_reduction: 70.8,
        source: "ATO authors' logs, p = 0.193",
    },
    Published {
        dataset: "imagenet",
        model: "resnet50",
        method: "ato",
        top1: 75.98,
        flops_reduction: 61.7,
        source: "ATO authors' logs, p = 0.296",
    },
    Published {
        dataset: "imagenet",
        model: "resnet50",
        method: "ato",
        top1: 76.37,
        flops_reduction: 55.9,
        source: "ATO authors' logs, p = 0.363",
    },
    Published {
        dataset: "imagenet",
        model: "resnet34",
        method: "ato",
        top1: 72.78,
        flops_reduction: 44.1,
        source: "ATO authors' logs, p = 0.54",
    },
    Published {
        dataset: "imagenet",
        model: "mobilenetv2",
        method: "ato",
        top1: 71.88,
        flops_reduction: 30.0,
        source: "ATO authors' logs (from a pretrained model)",
    },
    Published {
        dataset: "imagenet",
        model: "resnet50",
        method: "oto",
        top1: 74.7,
        flops_reduction: 65.5,
        source: "OTO README",
    },
    Published {
        dataset: "imagenet",
        model: "resnet50",
        method: "otov2",
        top1: 75.2,
        flops_reduction: 61.5,
        source: "OTOv2 README",
    },
    Published {
        dataset: "cifar10",
        model: "resnet18",
        method: "otov2",
        top1: 92.86,
        flops_reduction: 79.7,
        source: "OTOv2 README (torchvision-style ResNet-18)",
    },
];

/// Published rows for a (dataset, model, method).
pub fn matching(dataset: &str, model: &str, method: &str) -> Vec<&'static Published> {
    PUBLISHED
        .iter()
        .filter(|p| p.dataset == dataset && p.model == model && p.method == method)
        .collect()
}
