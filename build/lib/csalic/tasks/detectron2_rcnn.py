"""detectron2's Faster/Mask R-CNN X101-32x8d-FPN: the paper's task networks (optional).

detectron2 is not on PyPI, so this adapter is used only when ``import detectron2``
works.  It follows detectron2's documented API: a model-zoo config, ``build_model``,
``DetectionCheckpointer`` for local weights, ``model.backbone`` for the FPN maps
(p2..p6) and the model's own BGR 0-255 pixel mean/std.  ``predict`` applies the
test-time ResizeShortestEdge like ``DefaultPredictor``; ``features`` does not resize.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import CsalicError
from ..provenance import sha256_of
from .base import COCO_CATEGORY_IDS, TaskNetwork, as_image_list, freeze

# Model-zoo configs and the final weights' filenames of the 3x schedules used by the paper.
CONFIGS = {
    "d2_faster_rcnn_x101_fpn": ("COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml", "model_final_68b088.pkl"),
    "d2_mask_rcnn_x101_fpn": ("COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml", "model_final_2d9806.pkl"),
}
INSTALL_HINT = (
    "detectron2 is not installed (it is not on PyPI): install it from source with "
    "`pip install 'git+https://github.com/facebookresearch/detectron2.git'` "
    "or use the torchvision task networks (tv_faster_rcnn_r50_fpn, tv_mask_rcnn_r50_fpn)"
)


def _require_detectron2():
    try:
        import detectron2  # noqa: F401
    except ImportError as exc:
        raise CsalicError(INSTALL_HINT) from exc


class Detectron2RCNN(TaskNetwork):
    def __init__(self, name: str, model, cfg, kind: str, weights: Path | None):
        from detectron2.data import transforms as T

        self.name = name
        self.model = freeze(model)
        self.cfg = cfg
        self.kind = kind
        self.weights = weights
        self.weights_sha256 = sha256_of(weights) if weights else None
        self.categories = list(COCO_CATEGORY_IDS)
        shapes = model.backbone.output_shape()
        self._levels = list(shapes)  # p2..p6
        self.feature_strides = tuple(shapes[k].stride for k in self._levels)
        self._divisibility = max(1, int(model.backbone.size_divisibility))
        self._resize = T.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        if cfg.INPUT.FORMAT not in ("BGR", "RGB"):
            raise CsalicError(f"unsupported detectron2 input format {cfg.INPUT.FORMAT}")

    def _to_model_format(self, x: Tensor) -> Tensor:
        """RGB [0,1] -> the model's channel order in 0-255."""
        if self.cfg.INPUT.FORMAT == "BGR":
            x = x.flip(-3)
        return x * 255.0

    def features(self, x: Tensor) -> list[Tensor]:
        x = self._to_model_format(x)
        x = (x - self.model.pixel_mean.view(1, -1, 1, 1)) / self.model.pixel_std.view(1, -1, 1, 1)
        h, w = x.shape[-2:]
        d = self._divisibility
        # detectron2's FPN needs sizes divisible by its coarsest stride; pad like ImageList (zeros).
        x = F.pad(x, (0, (-w) % d, 0, (-h) % d))
        feats = self.model.backbone(x)
        return [feats[k] for k in self._levels]

    @torch.inference_mode()
    def predict(self, x: Tensor | Sequence[Tensor]) -> list[dict[str, Tensor]]:
        inputs = []
        for im in as_image_list(x):
            h, w = im.shape[-2:]
            arr = (self._to_model_format(im.clamp(0, 1)).round().byte().permute(1, 2, 0).cpu().numpy())
            arr = self._resize.get_transform(arr).apply_image(arr)
            tensor = torch.as_tensor(arr.astype("float32").transpose(2, 0, 1))
            inputs.append({"image": tensor.to(self.device), "height": h, "width": w})
        outputs = self.model(inputs)
        lut = torch.tensor(self.categories, dtype=torch.int64)
        results = []
        for out in outputs:
            inst = out["instances"].to("cpu")
            res = {
                "boxes": inst.pred_boxes.tensor,
                "scores": inst.scores,
                "labels": lut[inst.pred_classes],
            }
            if inst.has("pred_masks"):
                res["masks"] = inst.pred_masks.bool()
            results.append(res)
        return results

    def describe(self) -> dict:
        d = super().describe()
        d["source"] = "detectron2 " + CONFIGS[self.name][0]
        d["random_init"] = self.weights is None
        return d


def _build(name: str, *, weights: Path | None, num_classes: int | None, allow_random: bool) -> Detectron2RCNN:
    _require_detectron2()
    from detectron2 import model_zoo
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    config_file, weight_file = CONFIGS[name]
    if weights is None and not allow_random:
        raise CsalicError(
            f"task network {name} needs detectron2's model-zoo weights {weight_file} "
            f"({config_file}): pass its local path with --task-weights"
        )
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(config_file))
    cfg.MODEL.WEIGHTS = str(weights) if weights else ""
    cfg.MODEL.DEVICE = "cpu"
    if num_classes is not None:
        cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.freeze()
    model = build_model(cfg)
    if weights is not None:
        DetectionCheckpointer(model).load(str(weights))
    kind = "segmentation" if cfg.MODEL.MASK_ON else "detection"
    net = Detectron2RCNN(name, model, cfg, kind, weights)
    if num_classes is not None and num_classes != len(COCO_CATEGORY_IDS):
        net.categories = list(range(1, num_classes + 1))
    return net


def d2_faster_rcnn_x101_fpn(**kw) -> Detectron2RCNN:
    return _build("d2_faster_rcnn_x101_fpn", **kw)


def d2_mask_rcnn_x101_fpn(**kw) -> Detectron2RCNN:
    return _build("d2_mask_rcnn_x101_fpn", **kw)
