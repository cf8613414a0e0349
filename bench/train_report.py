"""Training bench reporting: the device's matmul peak (for MFU), the markdown tables and the issue's target checks."""

from __future__ import annotations

import time

from train_variants import VARIANTS

# bf16 dense tensor-core peaks (TFLOP/s), matched as substrings of torch.cuda.get_device_name(), first match wins.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("H800", 989.0), ("GH200", 989.0),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
    ("RTX 4090", 165.0), ("RTX 3090", 71.0), ("B200", 2250.0),
)  # fmt: skip


def device_peak_tflops(override: float | None) -> tuple[float | None, str]:
    """Matmul peak of this device: ``--peak-tflops``, else the GPU table's bf16 peak, else a measured CPU matmul in the
    dtype the recommended config trains in there (bf16 where the CPU computes it natively, else fp32: emulated bf16
    runs far below the fp32 every run uses then)."""
    import torch

    from minimind_hf.hardware import bf16_supported

    if override:
        return override, "--peak-tflops"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for key, peak in GPU_PEAK_TFLOPS:
            if key in name:
                return peak, f"{name} bf16 dense peak (table)"
        return None, f"{name}: unknown peak, pass --peak-tflops"
    dtype = torch.bfloat16 if bf16_supported(use_cpu=True) else torch.float32
    a = torch.randn(2048, 2048, dtype=dtype)
    best = min(_timed(lambda: a @ a) for _ in range(5))
    return 2 * 2048**3 / best / 1e12, f"measured CPU {str(dtype).removeprefix('torch.')} matmul 2048³ (best of 5)"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def model_tflops(result: dict) -> float:
    """A run's model TFLOP/s: 6 · (active) parameters · real tokens/s."""
    return 6 * result.get("active_params", result["params"]) * result["real_tok_s"] / 1e12


def format_train_tables(results: list[dict], peak: tuple[float | None, str]) -> str:
    peak_tflops, peak_source = peak
    lines = []
    for preset, max_length in dict.fromkeys((r["preset"], r["max_length"]) for r in results):
        rows = [r for r in results if (r["preset"], r["max_length"]) == (preset, max_length)]
        aux = any("heldout_aux_loss" in r for r in rows)
        base = next((r for r in rows if r["variant"] == "native" and "error" not in r), None)
        step0 = next((r for r in rows if r["variant"] == "native_step0" and "error" not in r), None)
        ok = [r for r in rows if "error" not in r]
        if not ok:
            continue
        first = ok[0]
        active = first.get("active_params", first["params"])
        size = f"{first['params'] / 1e6:.1f}M parameters" + (
            f", {active / 1e6:.1f}M active" if active != first["params"] else ""
        )
        lines += [
            f"### {preset} ({size}), batch {first['batch_size']}, max_length "
            f"{first['max_length']}, {first['device']}",
            "",
            f"{first['total_steps']} steps of {first['batch_size']} conversations ({first['total_steps'] * first['batch_size']}"
            f" samples, the same for every run); the first {first['warmup']} untimed.",
            "",
            "| run | real tok/s | × native | × native, CPU time | supervised tok/s | padding | s/step | peak mem (MB) | model TFLOP/s"
            + (" | MFU" if peak_tflops else "") + " | train loss (last 5) | held-out loss | Δ held-out vs native |"
            + (" Δ vs native_step0 |" if step0 else "") + (" held-out aux loss | Δ aux vs native |" if aux else ""),
            "|---|---|---|---|---|---|---|---|---" + ("|---" if peak_tflops else "") + "|---|---|---|"
            + ("---|" if step0 else "") + ("---|---|" if aux else ""),
        ]  # fmt: skip
        for r in rows:
            label = VARIANTS[r["variant"]]["label"]
            if "error" in r:
                lines.append(f"| `{r['variant']}` {label} | failed: {r['error'].splitlines()[-1][:120]} |")
                continue
            tflops = model_tflops(r)
            ratio = f"{r['real_tok_s'] / base['real_tok_s']:.2f}×" if base else "–"
            cpu_ratio = f"{r['real_tok_cpu_s'] / base['real_tok_cpu_s']:.2f}×" if base else "–"
            delta = f"{(r['heldout_loss'] / base['heldout_loss'] - 1) * 100:+.2f}%" if base else "–"
            train_loss = f"{r['train_loss_last5']:.4f}" if r.get("train_loss_last5") is not None else "–"
            cells = [
                f"`{r['variant']}` {label}", f"{r['real_tok_s']:,.0f}", ratio, cpu_ratio, f"{r['supervised_tok_s']:,.0f}",
                f"{r['pad_fraction']:.0%}", f"{r['s_per_step']:.2f}", f"{r['peak_mem_mb']:,.0f}", f"{tflops:.3f}",
            ]  # fmt: skip
            if peak_tflops:
                cells.append(f"{tflops / peak_tflops:.1%}")
            cells += [train_loss, f"{r['heldout_loss']:.4f}", delta]
            if step0:
                cells.append(f"{(r['heldout_loss'] / step0['heldout_loss'] - 1) * 100:+.2f}%")
            if aux:
                a, b = r.get("heldout_aux_loss"), (base or {}).get("heldout_aux_loss")
                cells += [f"{a:.4f}" if a is not None else "–", f"{(a / b - 1) * 100:+.2f}%" if a and b else "–"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Settings as the runs saw them:", ""]
        for r in ok:
            if r["variant"] != "native":
                s = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
                lines.append(f"- `{r['variant']}`: {s}")
        lines.append("")
    if peak_tflops:
        lines.append(
            f"Model TFLOP/s = 6 · (active) parameters · real tokens/s; MFU over {peak_tflops:.1f} TFLOP/s ({peak_source})."
        )
    else:
        lines.append(f"Model TFLOP/s = 6 · parameters · real tokens/s; no MFU: {peak_source}.")
    return "\n".join(lines)


def all_checks(results: list[dict], peak: tuple[float | None, str]) -> list[tuple[str, bool | None, str]]:
    """Every training target row, in the report's order: minimind2-small, the fp32 ceiling, MoE, native_ref."""
    return (
        target_checks(results) + fp32_ceiling_check(results, peak) + moe_checks(results) + native_ref_checks(results)
    )


def target_checks(results: list[dict], preset: str = "minimind2-small") -> list[tuple[str, bool | None, str]]:
    """(target, met?, figure) for the issue's training targets."""
    by = {r["variant"]: r for r in results if r["preset"] == preset and "error" not in r}
    checks = []
    base = by.get("native")
    if not base:
        return checks
    # native and native_step0 do the same work, yet run to run they differ by up to ~10% on a 2-core box: the speed
    # targets are checked against the faster of them.
    natives = [r for v, r in by.items() if v.startswith("native")]
    fastest = max(natives, key=lambda r: r["real_tok_s"])
    for variant, need, what in (
        ("ours", 3.0, "recommended CPU config ≥ 3.0× native real tokens/s"),
        ("ours_compile", 3.0, "the same with torch_compile (README's advice for runs past its break-even) ≥ 3.0×"),
        ("ours_fp32_fixed", 1.0, "fp32 with native's padding ≥ 1.0× native (no Trainer overhead)"),
    ):
        if variant in by:
            ratio = by[variant]["real_tok_s"] / fastest["real_tok_s"]
            what += f" (vs the faster native run, `{fastest['variant']}`)" if len(natives) > 1 else ""
            checks.append((what, ratio >= need, f"{ratio:.2f}×"))
    # MiniMind's get_lr counts steps from 1, so on a short run its rates sit one step further down the cosine than
    # Trainer's; native_step0 removes only that, and is the baseline the loss target is checked against.
    loss_base_name = "native_step0" if "native_step0" in by else "native"
    loss_base = by[loss_base_name]
    for variant, r in by.items():
        if not variant.startswith("native"):
            delta = r["heldout_loss"] / loss_base["heldout_loss"] - 1
            what = f"`{variant}` held-out loss within 1% of `{loss_base_name}`"
            checks.append((what, abs(delta) <= 0.01, f"{delta * 100:+.2f}%"))
    return checks


def fp32_ceiling_check(results: list[dict], peak: tuple[float | None, str], preset: str = "minimind2-small") -> list:
    """On a CPU without native bf16 every run trains in fp32 and ``peak`` is the fp32 matmul's: no run can go faster than
    that peak ÷ native's model TFLOP/s (100% MFU on real tokens alone). The 3.0× target assumes bf16; this row states
    how much of it such a CPU allows, as measured here."""
    import torch

    from minimind_hf.hardware import bf16_supported

    base = next((r for r in results if r["preset"] == preset and r["variant"] == "native" and "error" not in r), None)
    if torch.cuda.is_available() or bf16_supported(use_cpu=True) or not peak[0] or base is None:
        return []
    what = (
        "this CPU has no native bf16, so every run trains in fp32: the most any run can reach here, the fp32 matmul "
        "peak ÷ native's model TFLOP/s (the 3.0× target assumes bf16)"
    )
    return [(what, None, f"{peak[0] / model_tflops(base):.2f}×")]


def native_ref_checks(results: list[dict]) -> list[tuple[str, bool | None, str]]:
    """Per preset with a `native_ref` run: does bench/native_loop.py agree with MiniMind's own code?"""
    checks = []
    for preset in dict.fromkeys(r["preset"] for r in results):
        by = {r["variant"]: r for r in results if r["preset"] == preset and "error" not in r}
        if "native" in by and "native_ref" in by:
            ours, theirs = by["native"], by["native_ref"]
            delta = ours["heldout_loss"] / theirs["heldout_loss"] - 1
            speed = ours["real_tok_s"] / theirs["real_tok_s"]
            what = (
                f"{preset}: the bench's native loop = MiniMind's own code (`--native-ref`): held-out loss within 0.5%"
            )
            checks.append((what, abs(delta) <= 0.005, f"{delta * 100:+.2f}%"))
            what = f"{preset}: the same, real tokens/s (native ÷ native_ref; within this machine's ~15% noise)"
            checks.append((what, abs(speed - 1) <= 0.15, f"{speed:.2f}×"))
    return checks


def moe_checks(results: list[dict], preset: str = "minimind-3-moe") -> list[tuple[str, bool | None, str]]:
    """The MoE targets: ours ≥ 2.0× MiniMind's loop (with its dispatch), held-out loss within 1%, aux loss within 1%.

    The aux loss is compared like for like: MiniMind's loop pads every row to max_length and sends no mask, so its
    router statistics (and the balance they train) include the padding. The fixed-padding run of ours
    (`ours_fp32_fixed` on CPU, native's dtype there; `ours_bf16_fixed` if that is the one run) pads the same way and must
    match it within 1%; packed `ours` routes real tokens only, so its held-out aux loss (measured on real tokens for
    every run) must be no worse than native's + 1% (lower is a more even router). With `native_step0_order43` (the same
    loop on another batch order and augmentation draw) two more rows state how far the batches alone move both losses
    after a few updates from random init: the noise these checks sit in, since ours and MiniMind's loop draw different
    batches from the same samples."""
    by = {r["variant"]: r for r in results if r["preset"] == preset and "error" not in r}
    if "native" not in by or "ours" not in by:
        return []
    ours, base = by["ours"], by["native"]
    base_name = "native_step0" if "native_step0" in by else "native"
    ratio = ours["real_tok_s"] / base["real_tok_s"]
    checks = [(f"{preset}: recommended config ≥ 2.0× MiniMind's loop real tokens/s", ratio >= 2.0, f"{ratio:.2f}×")]

    def delta(run, key):
        return by[run][key] / by[base_name][key] - 1 if key in by[run] and key in by[base_name] else None

    fixed = next((run for run in ("ours_fp32_fixed", "ours_bf16_fixed", "ours_bf16_fixed_gpu") if run in by), None)
    for run in (fixed, "ours"):
        if run in by and (d := delta(run, "heldout_loss")) is not None:
            checks.append(
                (f"{preset}: `{run}` held-out loss within 1% of `{base_name}`", abs(d) <= 0.01, f"{d * 100:+.2f}%")
            )
    if fixed and (d := delta(fixed, "heldout_aux_loss")) is not None:
        what = f"{preset}: `{fixed}` (MiniMind's padding) held-out aux loss within 1% of `{base_name}`"
        checks.append((what, abs(d) <= 0.01, f"{d * 100:+.2f}%"))
    if "native_step0_order43" in by:  # the same loop on other batches: the spread the two checks above sit in
        for key, name in (("heldout_loss", "held-out loss"), ("heldout_aux_loss", "held-out aux loss")):
            if (d := delta("native_step0_order43", key)) is not None:
                what = f"{preset}: batch-order noise: `native_step0_order43` (seed 43) {name} vs `{base_name}`"
                checks.append((what, None, f"{d * 100:+.2f}%"))
    if (d := delta("ours", "heldout_aux_loss")) is not None:
        what = f"{preset}: `ours` (packed, no padding routed) held-out aux loss ≤ `{base_name}`'s + 1%"
        checks.append((what, d <= 0.01, f"{d * 100:+.2f}%"))
    return checks
