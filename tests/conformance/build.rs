//! Turns the TensorFlow Lite test vectors (JSON, committed under
//! `tests/vectors/tflite`) into static Rust data, so firmware reads them from
//! flash and the host runs the very same cases.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("integer"))
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    let mut s = String::from("&[");
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write!(s, "{x}").unwrap();
    }
    s.push(']');
    s
}

fn f32s(v: &[f32]) -> String {
    let bits: Vec<String> = v
        .iter()
        .map(|x| format!("f32::from_bits({:#x})", x.to_bits()))
        .collect();
    format!("&[{}]", bits.join(","))
}

fn tensor(t: &Value) -> String {
    let scale = t["scale"].as_f64().expect("scale") as f32;
    format!(
        "Tensor {{ shape: {}, scale: f32::from_bits({:#x}), zero_point: {}, data: {} }}",
        list(&ints(&t["shape"])),
        scale.to_bits(),
        t["zero_point"].as_i64().expect("zero point"),
        list(&ints(&t["data"]))
    )
}

fn act(p: &Value) -> &'static str {
    match p["activation"].as_str().unwrap_or("NONE") {
        "NONE" => "Activation::None",
        "RELU" => "Activation::Relu",
        "RELU6" => "Activation::Relu6",
        other => panic!("unknown activation {other}"),
    }
}

fn padding(p: &Value) -> &'static str {
    match p["padding"].as_str().expect("padding") {
        "SAME" => "Padding::Same",
        "VALID" => "Padding::Valid",
        other => panic!("unknown padding {other}"),
    }
}

fn pair(v: &Value) -> String {
    let v = ints(v);
    format!("[{}, {}]", v[0], v[1])
}

fn filter(p: &Value) -> String {
    let f = &p["filter"];
    format!(
        "Filter {{ shape: {}, scales: {}, data: {}, bias: {} }}",
        list(&ints(&f["shape"])),
        f32s(&floats(&f["scales"])),
        list(&ints(&f["data"])),
        list(&ints(&p["bias"]["data"]))
    )
}

fn op(case: &Value) -> String {
    let p = &case["params"];
    match case["op"].as_str().expect("op") {
        "conv2d" => format!(
            "Op::Conv {{ filter: {}, stride: {}, dilation: {}, padding: {}, activation: {}, depthwise: 0 }}",
            filter(p),
            pair(&p["stride"]),
            pair(&p["dilation"]),
            padding(p),
            act(p)
        ),
        "depthwise_conv2d" => format!(
            "Op::Conv {{ filter: {}, stride: {}, dilation: {}, padding: {}, activation: {}, depthwise: {} }}",
            filter(p),
            pair(&p["stride"]),
            pair(&p["dilation"]),
            padding(p),
            act(p),
            p["depth_multiplier"].as_i64().expect("depth multiplier")
        ),
        "fully_connected" => format!("Op::Dense {{ filter: {}, activation: {} }}", filter(p), act(p)),
        "add" => format!("Op::Add {{ activation: {} }}", act(p)),
        "concat" => "Op::Concat".to_string(),
        "max_pool" | "avg_pool" => format!(
            "Op::Pool {{ max: {}, filter: {}, stride: {}, padding: {}, activation: {} }}",
            case["op"] == "max_pool",
            pair(&p["filter"]),
            pair(&p["stride"]),
            padding(p),
            act(p)
        ),
        "softmax" => format!(
            "Op::Softmax {{ beta: f32::from_bits({:#x}) }}",
            (p["beta"].as_f64().expect("beta") as f32).to_bits()
        ),
        "requantize" => "Op::Requantize { activation: Activation::None }".to_string(),
        "relu" => "Op::Requantize { activation: Activation::Relu }".to_string(),
        "relu6" => "Op::Requantize { activation: Activation::Relu6 }".to_string(),
        other => panic!("unknown op {other}"),
    }
}

fn main() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/tflite");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let mut out = String::from("/// The TensorFlow Lite vectors, in file-name order.\npub static TFLITE_CASES: &[VectorCase] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path).expect("read vector");
        let case: Value = serde_json::from_str(&text).expect("parse vector");
        let inputs: Vec<String> = case["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(tensor)
            .collect();
        writeln!(
            out,
            "VectorCase {{ name: {:?}, op: {}, inputs: &[{}], output: {} }},",
            case["name"].as_str().expect("name"),
            op(&case),
            inputs.join(","),
            tensor(&case["output"])
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("tflite_cases.rs");
    std::fs::write(dest, out).expect("write generated cases");
}
