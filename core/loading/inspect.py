"""What a loaded model is made of: components, parameter counts, attention modules and their heads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class AttentionInfo:
    name: str
    kind: str  # "self" or "cross"
    heads: int
    head_dim: int
    query_dim: int
    cross_attention_dim: int


@dataclass
class ModelSummary:
    name: str
    family: str
    source: str
    model_hash: str
    components: dict = field(default_factory=dict)  # name -> parameter count
    attention: list = field(default_factory=list)

    @property
    def total_heads(self) -> int:
        return sum(a.heads for a in self.attention)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total_parameters"] = sum(self.components.values())
        d["attention_modules"] = len(self.attention)
        d["total_heads"] = self.total_heads
        return d


def attention_modules(unet) -> list[AttentionInfo]:
    """Every head-bearing attention module of a UNet (attn1 = self, attn2 = cross), in module order."""
    from core.offline import import_diffusers

    import_diffusers()
    from diffusers.models.attention_processor import Attention

    infos = []
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and name.rsplit(".", 1)[-1] in ("attn1", "attn2"):
            inner = module.to_q.out_features
            infos.append(AttentionInfo(
                name=name, kind="cross" if module.is_cross_attention else "self", heads=module.heads,
                head_dim=inner // module.heads, query_dim=module.to_q.in_features,
                cross_attention_dim=module.to_k.in_features,
            ))
    return infos


def summarize(loaded) -> ModelSummary:
    pipe = loaded.pipe
    components = {}
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, name, None)
        if module is not None:
            components[name] = sum(p.numel() for p in module.parameters())
    return ModelSummary(loaded.name, loaded.family, loaded.source, loaded.model_hash, components,
                        attention_modules(pipe.unet))


def format_summary(summary: ModelSummary) -> str:
    lines = [
        f"model     {summary.name}",
        f"family    {summary.family}   source {summary.source}   sha256 {summary.model_hash[:16]}",
        "parameters",
    ]
    for name, count in summary.components.items():
        lines.append(f"  {name:<16}{count:>16,}")
    lines.append(f"  {'total':<16}{sum(summary.components.values()):>16,}")
    lines.append(f"attention modules: {len(summary.attention)}, heads: {summary.total_heads}")
    for info in summary.attention:
        lines.append(f"  {info.name:<70} {info.kind:<5} {info.heads:>3} heads x {info.head_dim}")
    return "\n".join(lines)
