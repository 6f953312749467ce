"""The paper's references: every work a study takes a claim, a recipe or a published number
from, with what this harness uses of it (the table or repository, and its conditions)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    key: str
    citation: str
    used: str  # what the paper takes from it, and under which conditions


REFERENCES: tuple[Reference, ...] = (
    Reference("cao2019", "K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. Learning Imbalanced "
              "Datasets with Label-Distribution-Aware Margin Loss. NeurIPS 2019.",
              "LDAM-DRW; its top-1 errors on long-tailed CIFAR-10 (Table 2: ResNet-32, 200 "
              "epochs, canonical CIFAR-10, IF 100 and 10)."),
    Reference("cui2019", "Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie. Class-Balanced Loss "
              "Based on Effective Number of Samples. CVPR 2019.",
              "the class-balanced losses, their beta and gamma grid, the long-tailed CIFAR-10 "
              "construction; its top-1 errors (Table 2: ResNet-32, 200 epochs, canonical "
              "CIFAR-10)."),
    Reference("he2016", "K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image "
              "Recognition. CVPR 2016.", "ResNet-20/32 for CIFAR."),
    Reference("jordan2024", "K. Jordan. 94% on CIFAR-10 in 3.29 Seconds on a Single GPU. "
              "arXiv:2404.00498, 2024; code: github.com/KellerJordan/airbench.",
              "airbench94's network and recipe (fastnet here); 94.01% mean test accuracy on "
              "canonical CIFAR-10 (its README; external, not measured by this harness)."),
    Reference("krizhevsky2009", "A. Krizhevsky. Learning Multiple Layers of Features from Tiny "
              "Images. Technical report, University of Toronto, 2009.",
              "CIFAR-10 (here a JPEG quality-75 copy of it)."),
    Reference("lehtinen2018", "J. Lehtinen, J. Munkberg, J. Hasselgren, S. Laine, T. Karras, "
              "M. Aittala, T. Aila. Noise2Noise: Learning Image Restoration without Clean Data. "
              "ICML 2018.",
              "noisy-target training, the noise models and their test levels, the U-Net and "
              "recipe; its PSNRs (Table 1: Kodak and BSD300, network trained on ImageNet "
              "crops, other data than ours)."),
    Reference("lin2017", "T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár. Focal Loss for "
              "Dense Object Detection. ICCV 2017.", "the focal loss."),
    Reference("menon2021", "A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, "
              "S. Kumar. Long-tail Learning via Logit Adjustment. ICLR 2021.",
              "post-hoc logit adjustment (tau 1)."),
    Reference("ren2020", "J. Ren, C. Yu, S. Sheng, X. Ma, H. Zhao, S. Yi, H. Li. Balanced "
              "Meta-Softmax for Long-Tailed Visual Recognition. NeurIPS 2020.",
              "balanced softmax."),
    Reference("ronneberger2015", "O. Ronneberger, P. Fischer, T. Brox. U-Net: Convolutional "
              "Networks for Biomedical Image Segmentation. MICCAI 2015.", "the U-Net."),
    Reference("zhang2017", "C. Zhang, S. Bengio, M. Hardt, B. Recht, O. Vinyals. Understanding "
              "Deep Learning Requires Rethinking Generalization. ICLR 2017.",
              "the randomization tests; its Table 1 (MLP 1x512 rows: canonical CIFAR-10, "
              "SGD, training and test accuracy) and Figure 1."),
)
