"""Shared fixtures."""

import csv
import os
import random
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared data: $HEA_RAG_SHARED, else `shared/` beside the repository.

    Missing data is a failure, not a skip: CI always has it, so its absence is a broken setup.
    """
    default = Path(__file__).resolve().parents[1].parent / "shared"
    path = Path(os.environ.get("HEA_RAG_SHARED") or default)
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path} (set HEA_RAG_SHARED)")
    return path


# --- isolation ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def index_env(tmp_path, monkeypatch) -> Path:
    """Every test gets its own default index folder, so nothing writes into the repo's `index/`.

    Subprocesses inherit it too. The embedder and debug overrides of a developer's shell are
    dropped so that tests see the documented defaults.
    """
    path = tmp_path / "default-index"
    monkeypatch.setenv("HEA_RAG_INDEX", str(path))
    monkeypatch.delenv("HEA_RAG_EMBEDDER", raising=False)
    monkeypatch.delenv("HEA_RAG_DEBUG", raising=False)
    return path


# --- the real embedder, loaded once -------------------------------------------------------


@pytest.fixture(scope="session")
def embedder():
    """The real default MiniLM embedder (bundled, offline) on the default backend, the one
    `index_paths` builds indexes with. Later `load_embedder` calls in the same process reuse
    the imported libraries and are fast."""
    from hea_rag.embedder import load_embedder

    return load_embedder()


# --- invented corpora ---------------------------------------------------------------------
# Short fake HEA abstracts written for the tests; none of them comes from the shared data.

HEA_PAPERS = [
    {
        "Title": "Sintered MoNbVTa0.5Cr refractory alloy",
        "Year": "2024",
        "DOI": "10.9999/fake.2024.001",
        "Abstract": (
            "The refractory high-entropy alloy MoNbVTa0.5Cr was prepared by spark plasma sintering "
            "(SPS) at 1600 °C. Its compressive yield strength reached 2783 MPa at room temperature "
            "and 1012 MPa at 1500 °C. The BCC matrix held 20.45 % of a Laves phase."
        ),
    },
    {
        "Title": "Grain refinement of Al0.3CoCrFeNi",
        "Year": "2023",
        "DOI": "10.9999/fake.2023.002",
        "Abstract": (
            "An Al0.3CoCrFeNi alloy with an FCC structure was cold rolled by 70 % and annealed at "
            "900 °C for 1 h. Grains of 5.2 μm raised the yield strength to 650 MPa while the "
            "elongation stayed at 35 %."
        ),
    },
    {
        "Title": "High-entropy carbide ceramics",
        "Year": "2022",
        "DOI": "10.9999/fake.2022.003",
        "Abstract": (
            "Single-phase (TiZrHfCr)C ceramics were synthesized by carbothermal reduction at "
            "2000 °C. The Vickers hardness was 24.5 GPa and the fracture toughness 3.9 MPa·m1/2."
        ),
    },
    {
        "Title": "Carbide-reinforced titanium composite",
        "Year": "2021",
        "DOI": "10.9999/fake.2021.004",
        "Abstract": (
            "A Ti40Nb15Mo30(NbC)15 composite was produced by vacuum arc melting. The NbC particles "
            "refined the dendrites, and the compressive strength rose to 1870 MPa with a fracture "
            "strain of 12 %."
        ),
    },
    {
        "Title": "Porous biomedical alloy",
        "Year": "2024",
        "DOI": "10.9999/fake.2024.005",
        "Abstract": (
            "Porous Ti62Nb12Mo12Ta12W2 scaffolds were made by powder metallurgy for bone implants. "
            "The elastic modulus of 48 GPa matched cortical bone, and the porosity was 41 %."
        ),
    },
    {
        "Title": "Cryogenic twinning in the Cantor alloy",
        "Year": "2020",
        "DOI": "10.9999/fake.2020.006",
        "Abstract": (
            "Tensile tests of the CoCrFeMnNi alloy at 77 K showed profuse deformation twinning. "
            "The ultimate tensile strength was 1280 MPa and the elongation 71 %."
        ),
    },
    {
        "Title": "Hydrogen in a ductile refractory alloy",
        "Year": "2023",
        "DOI": "10.9999/fake.2023.007",
        "Abstract": (
            "The HfNbTaTiZr alloy absorbed 0.8 wt.% hydrogen after charging at 400 °C, which "
            "expanded its BCC lattice by 1.1 % without embrittlement."
        ),
    },
    {
        "Title": "Eutectic lamellae after annealing",
        "Year": "2022",
        "DOI": "10.9999/fake.2022.008",
        "Abstract": (
            "The eutectic AlCoCrFeNi2.1 alloy consists of FCC and B2 lamellae with a spacing of "
            "0.8 μm. Annealing at 1100 °C for 10 h coarsened the lamellae but kept a tensile "
            "strength of 1050 MPa."
        ),
    },
    {
        "Title": "Sputtered tungsten-rich films",
        "Year": "2021",
        "DOI": "10.9999/fake.2021.009",
        "Abstract": (
            "NbMoTaW thin films deposited by magnetron sputtering had a nanoindentation hardness "
            "of 16.3 GPa and a columnar grain width of 40 nm."
        ),
    },
    {
        "Title": "",
        "Year": "",
        "DOI": "",
        "Abstract": (
            "The corrosion of CoCrFeNiCu0.5 in 3.5 wt.% NaCl solution was studied by "
            "potentiodynamic polarization; copper-rich interdendritic regions corroded first and "
            "the corrosion current density was 0.21 μA/cm2."
        ),
    },
    {
        "Title": "Oxidation of a lightweight refractory alloy",
        "Year": "2024",
        "DOI": "10.9999/fake.2024.011",
        "Abstract": (
            "Al0.5CrNbTi2V0.5 was oxidized in air at 1000 °C for 100 h. A protective CrNbO4 "
            "scale formed and the mass gain was 4.7 mg/cm2."
        ),
    },
    {
        "Title": "Additively manufactured CoCrFeNi: a long study",
        "Year": "2023",
        "DOI": "10.9999/fake.2023.012",
        "Abstract": " ".join(
            [
                "Laser powder bed fusion was used to print dense CoCrFeNi parts from gas-atomized "
                "powder with a mean particle size of 32 μm.",
                "The laser power was varied from 150 W to 350 W and the scan speed from 600 mm/s "
                "to 1400 mm/s, giving volumetric energy densities between 40 J/mm3 and 120 J/mm3.",
                "Relative densities above 99.5 % were reached at intermediate energy densities, "
                "while lack-of-fusion pores appeared below 55 J/mm3.",
                "The as-built microstructure consisted of columnar grains growing along the build "
                "direction, with cellular sub-structures of about 0.6 μm.",
                "Dislocation cells decorated with Cr segregation were observed by transmission "
                "electron microscopy in every sample.",
                "As shown in Fig. 3, the yield strength of the printed parts was 590 MPa, much higher "
                "than the 210 MPa of the cast and homogenized counterpart.",
                "Stress-relief annealing at 700 °C for 1 h kept the cells and lowered the residual "
                "stress by 60 %, whereas recrystallization at 1100 °C erased them.",
                "The ductility of the printed alloy reached 42 % after the stress-relief treatment.",
                "Electron backscatter diffraction showed a weak <101> fibre texture along the build "
                "direction in all conditions.",
                "Nanoindentation revealed a hardness of 3.4 GPa in the as-built state and 2.6 GPa "
                "after recrystallization.",
                "The strengthening was attributed mainly to the dislocation cells, with a smaller "
                "contribution from the fine grains.",
                "These results show that printing parameters can tune the strength of CoCrFeNi "
                "without any heat treatment.",
            ]
        ),
    },
]

# New papers, and duplicates of HEA_PAPERS, for incremental indexing and dedup tests.
MORE_PAPERS = [
    {
        "Title": "Hot forging of NiCoCrV",
        "Year": "2024",
        "DOI": "10.9999/fake.2024.101",
        "Abstract": (
            "A NiCoCrV medium-entropy alloy was hot forged at 1150 °C; the grain size fell to "
            "8 μm and the yield strength rose to 720 MPa."
        ),
    },
    {
        "Title": "Creep of TiZrNbHfTa",
        "Year": "2023",
        "DOI": "",
        "Abstract": (
            "Creep tests of TiZrNbHfTa at 900 °C and 100 MPa gave a steady-state creep rate of "
            "3.2e-7 s-1 and a stress exponent of 4.1."
        ),
    },
    {  # same DOI as HEA_PAPERS[1], written as a URL with capitals, and a different abstract text
        "Title": "Grain refinement of Al0.3CoCrFeNi (accepted manuscript)",
        "Year": "2023",
        "DOI": "https://doi.org/10.9999/FAKE.2023.002",
        "Abstract": "Accepted manuscript version of the Al0.3CoCrFeNi grain refinement study.",
    },
    {  # no DOI, same text as HEA_PAPERS[2] up to case and whitespace
        "Title": "",
        "Year": "",
        "DOI": "",
        "Abstract": "  SINGLE-PHASE (TiZrHfCr)C ceramics were synthesized by carbothermal reduction at\n"
        "2000 °C.   The Vickers hardness was 24.5 GPa and the fracture toughness 3.9 MPa·m1/2.",
    },
]

COLUMNS = ["Title", "Year", "DOI", "Abstract"]


def write_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return path


_GEN_ELEMENTS = ["Al", "Co", "Cr", "Fe", "Ni", "Mn", "Cu", "Ti", "V", "Nb", "Mo", "Ta", "W", "Zr", "Hf"]
_GEN_PROCESSES = ["arc melting", "spark plasma sintering", "laser cladding", "induction melting",
                  "mechanical alloying", "directed energy deposition"]
_GEN_PROPERTIES = [("yield strength", "MPa"), ("hardness", "HV"), ("elastic modulus", "GPa"),
                   ("fracture toughness", "MPa·m1/2"), ("wear rate", "mm3/Nm")]


def generate_papers(count: int, seed: int = 0, doi_prefix: str = "10.9998/gen") -> list[dict]:
    """`count` distinct invented abstracts with random alloys, processes and numbers."""
    rng = random.Random(seed)
    papers = []
    for n in range(count):
        elements = rng.sample(_GEN_ELEMENTS, rng.randint(4, 6))
        formula = "".join(
            e + (f"{rng.choice([0.1, 0.2, 0.3, 0.5, 1.5, 2])}" if rng.random() < 0.3 else "")
            for e in elements
        )
        prop, unit = rng.choice(_GEN_PROPERTIES)
        temperature = rng.randrange(500, 1500, 50)
        value = round(rng.uniform(10, 3000), 1)
        papers.append(
            {
                "Title": f"Study {n} of {formula}",
                "Year": str(rng.randint(2010, 2025)),
                "DOI": f"{doi_prefix}.{seed}.{n:05d}",
                "Abstract": (
                    f"The {formula} high-entropy alloy (sample {seed}-{n}) was made by "
                    f"{rng.choice(_GEN_PROCESSES)} and aged at {temperature} °C for "
                    f"{rng.randint(1, 48)} h. Its {prop} reached {value} {unit}, and "
                    f"{rng.randint(1, 40)} % of a {rng.choice(['BCC', 'FCC', 'B2', 'L12', 'sigma'])} "
                    "phase was found."
                ),
            }
        )
    return papers


@pytest.fixture(scope="session")
def hea_papers() -> list[dict]:
    """The invented core corpus: one dict per paper, with Scopus-like columns."""
    return [dict(p) for p in HEA_PAPERS]


@pytest.fixture(scope="session")
def more_papers() -> list[dict]:
    """Two new papers plus one DOI duplicate and one text duplicate of `hea_papers`."""
    return [dict(p) for p in MORE_PAPERS]


@pytest.fixture(scope="session")
def corpus_csv(tmp_path_factory, hea_papers) -> Path:
    """`hea_papers` as a Scopus-like CSV file (read-only by convention: copy before changing)."""
    return write_csv(tmp_path_factory.mktemp("corpus") / "papers_a.csv", hea_papers)


@pytest.fixture(scope="session")
def more_csv(tmp_path_factory, more_papers) -> Path:
    return write_csv(tmp_path_factory.mktemp("corpus") / "papers_b.csv", more_papers)


@pytest.fixture(scope="session")
def csv_writer():
    """write_csv(path, rows) -> path, rows being dicts with Title/Year/DOI/Abstract."""
    return write_csv


@pytest.fixture(scope="session")
def paper_generator():
    """generate_papers(count, seed=0, doi_prefix=...) -> invented abstracts as CSV row dicts."""
    return generate_papers


# --- the Phi code path: a tiny PhiForCausalLM with the real Phi-2 tokenizer ----------------


@pytest.fixture(scope="session")
def phi_tokenizer(shared_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_dir / "data" / "phi2-tokenizer")


@pytest.fixture(scope="session")
def tiny_phi_dir(tmp_path_factory, phi_tokenizer) -> Path:
    """A saved tiny PhiForCausalLM (random weights, Phi-2's module names and vocabulary)."""
    import torch
    from transformers import PhiConfig, PhiForCausalLM

    torch.manual_seed(0)
    config = PhiConfig(vocab_size=51200, hidden_size=64, intermediate_size=128,
                       num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=2048,
                       eos_token_id=50256, bos_token_id=50256)
    folder = tmp_path_factory.mktemp("tiny-phi")
    PhiForCausalLM(config).save_pretrained(folder)
    phi_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def bos_tokenizer():
    """A real fast tokenizer that adds BOS (`<s>`) before every text, as Llama, Mistral and Qwen
    tokenizers do: a small byte-level BPE trained here, offline, in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([p["Abstract"] for p in HEA_PAPERS] + ["Question: Q?\nAnswer: A"], trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bpe.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


# --- the real shared corpus, indexed once per session ---------------------------------------


@pytest.fixture(scope="session")
def csv_path(shared_dir):
    path = shared_dir / "data" / "hea_qa" / "Scopus_Abstracts_Dataset.csv"
    assert path.is_file(), f"missing {path}"
    return path


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder, csv_path):
    """The whole shared CSV indexed once: (folder, summary)."""
    from hea_rag.indexer import index_paths

    folder = tmp_path_factory.mktemp("corpus") / "index"
    return folder, index_paths([str(csv_path)], folder)
