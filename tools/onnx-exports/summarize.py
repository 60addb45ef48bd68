"""Writes graph-summary.txt: what a reader of an exported decoder graph needs at a glance.

Opset imports, graph inputs and outputs with their shapes, op-type counts, and the nodes of layer
0's attention block (from the q/k/v projection to o_proj, with the rotary nodes the block uses).

Usage: python summarize.py FOLDER MODEL.onnx [MODEL.onnx ...]   (model paths relative to FOLDER)
"""

import collections
import pathlib
import re
import sys

import onnx

# Layer 0's attention scope in the exporters' node names (optimum: /model/layers.0/self_attn/...,
# genai builder: /model/layers.0/attn/...), and the rotary nodes some exporters share across layers.
LAYER_ZERO_ATTENTION = re.compile(r"layers\.0/(self_attn|attn)/|rotary_emb|/model/(pos_ids|attn_mask)_reformat|/model/rotemb_caches")


def describe_value(value):
    tensor_type = value.type.tensor_type
    element = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()
    dimensions = [d.dim_param or str(d.dim_value) if d.HasField("dim_param") or d.HasField("dim_value") else "?" for d in tensor_type.shape.dim]
    return f"{value.name}: {element}[{', '.join(dimensions)}]"


def summarize(path):
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    lines = [f"## {path.name}", ""]
    lines.append(f"ir_version {model.ir_version}; producer {model.producer_name} {model.producer_version}".rstrip())
    lines.append("opset imports: " + ", ".join(f"{entry.domain or 'ai.onnx'} {entry.version}" for entry in model.opset_import))
    external = sorted({entry.value for tensor in graph.initializer for entry in tensor.external_data if entry.key == "location"})
    lines.append(f"initializers: {len(graph.initializer)}; external data files: {', '.join(external) or 'none'}")
    lines.append("")
    lines.append("inputs:")
    lines += [f"  {describe_value(value)}" for value in graph.input]
    lines.append("outputs:")
    lines += [f"  {describe_value(value)}" for value in graph.output]
    lines.append("")
    counts = collections.Counter(f"{node.domain + ':' if node.domain else ''}{node.op_type}" for node in graph.node)
    lines.append(f"op types ({len(graph.node)} nodes):")
    lines += [f"  {name} {count}" for name, count in sorted(counts.items())]
    lines.append("")
    lines.append("layer 0 attention block (graph order: name, op type, inputs -> outputs):")
    for node in graph.node:
        if LAYER_ZERO_ATTENTION.search(node.name):
            domain = f"{node.domain}:" if node.domain else ""
            attributes = ", ".join(f"{a.name}={onnx.helper.get_attribute_value(a)}" for a in node.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING))
            attributes = f" {{{attributes}}}" if attributes else ""
            lines.append(f"  {node.name}  {domain}{node.op_type}{attributes}  ({', '.join(node.input)}) -> ({', '.join(node.output)})")
    lines.append("")
    return lines


def write_summary(folder, model_names):
    lines = [f"# graph summary of {folder.parent.name}/{folder.name}", "", "files: " + ", ".join(sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "graph-summary.txt")), ""]
    for name in model_names:
        lines += summarize(folder / name)
    (folder / "graph-summary.txt").write_text("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit("usage: python summarize.py FOLDER MODEL.onnx [MODEL.onnx ...]")
    write_summary(pathlib.Path(sys.argv[1]), sys.argv[2:])
