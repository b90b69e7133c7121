"""The `hea-rag` command line. Thin: parse options, call one library function, format the output.

Heavy libraries (torch, transformers, faiss) are imported inside commands, so `--help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from hea_rag import __version__, config
from hea_rag.answer import GATE_HITS, AskSettings
from hea_rag.answers import CPU_BATCH, CUDA_BATCH
from hea_rag.errors import HeaRagError
from hea_rag.merging import MOST_PASSAGES
from hea_rag.finetune import TrainSettings
from hea_rag.onnx_encoder import BACKENDS, DEFAULT_BACKEND
from hea_rag.output import status
from hea_rag.server.settings import ENV_TOKEN, ServeSettings

index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
    default=config.DEFAULT_INDEX, envvar=config.ENV_INDEX, show_default=True, show_envvar=True,
    help="Index folder.",
)
_TRAIN = TrainSettings()  # finetune's defaults, shown in its --help
_SERVE = ServeSettings()  # serve's defaults, shown in its --help
embedder_option = click.option(
    "--embedder", envvar=config.ENV_EMBEDDER, show_envvar=True,
    help="Sentence-transformers model id or local path. Default: the one the index was built "
         "with, or all-MiniLM-L6-v2 (bundled, offline) for a new index.",
)


class UserFacingError(click.ClickException):
    """Shown as one line, `hea-rag: error: ...`, with the error's own exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        status(f"hea-rag: error: {self.message}")


def _enable_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ[config.ENV_DEBUG] = "1"  # library loaders read it to keep their logs


def _debug_option() -> click.Option:
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                        callback=_enable_debug, envvar=config.ENV_DEBUG,
                        help="Show tracebacks on errors.")


class Group(click.Group):
    """Turns every failure into one line and an exit code; `--debug` adds the traceback.

    `--debug` works before the subcommand and after it: every command gets the option too.
    """

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.append(_debug_option())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise UserFacingError("interrupted", 130) from None
        except BrokenPipeError:
            _stop_at_closed_pipe()
        except Exception as error:  # noqa: BLE001 - the last line of defence for a one-line message
            debug = config.debug_enabled()
            if debug:
                traceback.print_exc()
            if isinstance(error, HeaRagError):
                raise UserFacingError(str(error), error.exit_code) from error
            message = f"internal error: {type(error).__name__}: {error}".splitlines()[0]
            hint = "" if debug else " (rerun with --debug for details)"
            raise UserFacingError(message + hint) from error


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hea-rag")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_enable_debug,
              envvar=config.ENV_DEBUG, help="Show tracebacks on errors (also after the command).")
def cli() -> None:
    """Answer questions about High Entropy Alloys from an index of paper abstracts."""


@cli.command()
@click.argument("paths", nargs=-1)
@index_option
@embedder_option
@click.option("--chunk-tokens", type=click.IntRange(16, 512), default=None,
              help="Most embedder tokens in one passage (new index or --rebuild).  [default: 200]")
@click.option("--lock-timeout", type=float, default=config.DEFAULT_LOCK_TIMEOUT, show_default=True,
              help="Seconds to wait for another indexing run on the same folder.")
@click.option("--rebuild", is_flag=True,
              help="Build the index afresh from the papers it stores, plus PATHS: the fix for a "
                   "damaged index or an older format (--embedder and --chunk-tokens may change).")
@click.option("--full-text", is_flag=True,
              help="Also index the body of PDFs (sections up to the references, each passage "
                   "with its page). Default: abstracts only, as the adapter was trained on them.")
@click.option("--embedder-backend", type=click.Choice(BACKENDS), default=None,
              envvar="HEA_RAG_EMBEDDER_BACKEND", show_envvar=True,
              help="What runs the embedder (new index or --rebuild; the manifest records it and "
                   f"queries use the same).  [default: {DEFAULT_BACKEND}; torch for embedders "
                   "it cannot export]")
@click.option("--compact", is_flag=True,
              help="Merge the index's segments (one per indexing run) into one, after adding "
                   "PATHS if given; searches keep working meanwhile.")
@click.option("--merge/--no-merge", default=True, show_default=True,
              help="After adding, merge the newest small segments so that runs of a few papers "
                   f"do not pile up segments (never more than {MOST_PASSAGES:,} passages in one run).")
def index(paths, index_dir, embedder, chunk_tokens, lock_timeout, rebuild, full_text,
          embedder_backend, compact, merge) -> None:
    """Add papers from PATHS (CSV/TSV, Scopus export, JSON/JSONL, BibTeX, RIS, PDF, .txt/.md files
    or folders; - for stdin) to the index. Papers already indexed are skipped, not re-embedded."""
    from hea_rag.chunking import ChunkingParams
    from hea_rag.indexer import index_paths, rebuild_index

    if compact and not paths and not rebuild:
        return _compact(index_dir, lock_timeout)
    if not paths and not rebuild:
        raise click.UsageError("give the PATHS to index (or --rebuild, or --compact)")
    chunking = ChunkingParams(max_tokens=chunk_tokens) if chunk_tokens else None
    with _progress_bar("embedding passages") as on_progress:
        options = dict(on_wait=lambda: status(f"waiting for another indexing run to release {index_dir} ..."),
                       on_progress=on_progress, full_text=full_text, backend=embedder_backend)
        if rebuild:
            summary = rebuild_index(paths, index_dir, embedder, chunking, lock_timeout, **options)
        else:
            summary = index_paths(paths, index_dir, embedder, chunking, lock_timeout, merge=merge, **options)
    _report_index_summary(summary, index_dir)
    if compact:
        _compact(index_dir, lock_timeout)
    if summary.failed:
        added = f"{summary.added} new papers were added" if summary.added else "nothing was added"
        raise UserFacingError(f"{len(summary.failed)} file(s) or row(s) failed (listed above); {added}")


def _compact(index_dir: Path, lock_timeout: float) -> None:
    from hea_rag.indexer import compact_index

    before, after = compact_index(index_dir, lock_timeout, on_wait=lambda: status(
        f"waiting for another indexing run to release {index_dir} ..."))
    status(f"compacted {before} segment(s) into {after} in {index_dir}")


@cli.command()
@click.argument("query", required=False)
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 100), default=config.DEFAULT_K,
              show_default=True, help="Papers to return.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit (JSON Lines).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid",
              show_default=True, help="Retrieval method.")
@index_option
@embedder_option
def search(query, k, as_json, mode, index_dir, embedder) -> None:
    """Find the passages that best answer QUERY. With no QUERY or -, read one query per line from
    stdin (models load once) and tag each hit with its query."""
    from hea_rag.output import hit_record, print_hits, write_json_line
    from hea_rag.retrieve import open_retriever

    batch = query in (None, "-")
    queries = _stdin_lines() if batch else [query]
    with open_retriever(index_dir, embedder, need_dense=mode != "lexical") as retriever:
        for text in queries:
            hits = retriever.search(text, k=k, mode=mode)
            tag = text if batch else None
            if as_json:
                for hit in hits:
                    write_json_line(hit_record(hit, tag))
            else:
                print_hits(hits, tag)


def generator_options(command):
    """Options shared by `ask` and `eval`: which model, adapter and precision answer. Defaults
    come from AskSettings."""
    defaults = AskSettings()
    options = [
        click.option("--model", envvar=config.ENV_MODEL, show_envvar=True,
                     default=config.DEFAULT_MODEL, show_default=True,
                     help="Hub id, local folder, or the embedded preset smollm2-135m (offline)."),
        click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None,
                     help="LoRA adapter folder. Default: INDEX/adapter when it exists, else the "
                          "adapter shipped for smollm2-135m."),
        click.option("--no-adapter", is_flag=True, help="Use the base model alone."),
        click.option("--quantize", type=click.Choice(["4bit", "8bit", "none"]), default=None,
                     help="Base model precision. Default: 4bit on CUDA, none (bf16/fp32) on CPU."),
        click.option("--max-new-tokens", type=click.IntRange(1, 1024),
                     default=defaults.max_new_tokens, show_default=True),
        click.option("-k", "--top-k", "k", type=click.IntRange(1, 20), default=defaults.top_k,
                     show_default=True, help="Papers whose passages may go into the prompt."),
        click.option("--context-tokens", type=click.IntRange(16, 32768),
                     default=defaults.context_tokens, show_default=True,
                     help="Most context tokens (the model window caps it too)."),
        click.option("--min-score", type=float, default=defaults.min_score, show_default=True,
                     help=f"Abstain when no passage of the best {GATE_HITS} papers has a cosine "
                          "to the question of at least this (reason low_score; the other "
                          "refusals are in the README, 'When hea-rag refuses')."),
        index_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _ask_settings(k, max_new_tokens, context_tokens, min_score):
    return AskSettings(top_k=k, max_new_tokens=max_new_tokens, context_tokens=context_tokens,
                       min_score=min_score)


MOST_PAPERS = 50  # search returns up to about 100 candidates; beyond, --papers all --filter


def _papers_value(ctx, param, value: str):
    """`--papers`: a count of papers (1-50) or `all`."""
    if value == "all":
        return value
    if value.isdigit() and 1 <= int(value) <= MOST_PAPERS:
        return int(value)
    raise click.BadParameter(f"{value!r} is not a number from 1 to {MOST_PAPERS} or `all`")


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question (JSON Lines).")
@click.option("--context", "context", default=None,
              help="Use this context (TEXT, or @FILE) instead of retrieving one.")
@click.option("--papers", default="1", show_default=True, callback=_papers_value, metavar="N|all",
              help="Answer from each of the best N papers separately (1-50), or from `all` the "
                   "papers --filter matches; every paper gets the trained prompt and the gates.")
@click.option("--filter", "filter_words", default=None, metavar="WORDS",
              help="With --papers all: the papers the lexical index matches for every word "
                   "(a formula by its elements).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv", "tsv", "markdown"]),
              default=None, help="Output: text (a table per question with --papers), json (as "
                                 "--json), or one row per answering paper in csv, tsv, markdown.")
@click.option("--batch-size", type=click.IntRange(1, 64), default=None,
              help=f"Papers' prompts per pass through the model.  [default: {CPU_BATCH} on "
                   f"CPU, where batches measured no faster; {CUDA_BATCH} on CUDA]")
@generator_options
def ask(question, as_json, context, papers, filter_words, fmt, batch_size, model, adapter,
        no_adapter, quantize, max_new_tokens, k, context_tokens, min_score, index_dir) -> None:
    """Answer QUESTION from the indexed abstracts, citing the papers used. With no QUESTION or -,
    answer each line of stdin (models load once), one JSON line per question with --json.
    An answer is printed only once the passage it came from is found to hold it, with that
    sentence under it; otherwise the refusal says why. On a terminal, stderr shows what is
    being done meanwhile. --papers N answers from each paper alone: a row per paper that
    answers, the refused ones folded into one line, and a summary of the values found."""
    from hea_rag.answer import open_answerer
    from hea_rag.output import StageStatus, print_answer, print_answer_error, write_json_line

    fmt = _ask_format(as_json, fmt, papers, filter_words, context, k)
    batch = question in (None, "-")
    questions = _stdin_lines() if batch else [question]
    given_context = _read_context(context)
    settings = _ask_settings(k, max_new_tokens, context_tokens, min_score)
    if papers != 1 or fmt not in ("text", "json"):
        from hea_rag.answers import PapersSettings

        return _ask_papers(questions, batch, fmt, PapersSettings(papers, filter_words, batch_size),
                           (index_dir, model, adapter, not no_adapter, quantize, settings))
    with StageStatus() as shown, open_answerer(
            index_dir, model, adapter, not no_adapter, quantize, settings,
            need_retrieval=given_context is None, on_stage=shown) as answerer:
        for text in questions:
            try:
                answer = answerer.ask(text, given_context)
            except HeaRagError as error:
                if not batch:
                    raise
                shown.stop()
                print_answer_error(text, str(error), as_json)
                continue
            shown.stop()
            if as_json:
                write_json_line(answer.as_dict())
            else:
                print_answer(answer)


def _ask_format(as_json: bool, fmt: str | None, papers, filter_words, context, k) -> str:
    """The output format, once the options are known to go together."""
    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} do not go together")
    if (papers == "all") != bool(filter_words):
        raise click.UsageError("--papers all needs --filter WORDS, and --filter goes with it")
    if papers != 1 and context is not None:
        raise click.UsageError("--papers reads the indexed papers; it does not go with --context")
    if papers != 1 and k != AskSettings().top_k:
        raise click.UsageError("--papers asks each paper alone; it does not go with -k")
    return "json" if as_json else fmt or "text"


def _ask_papers(questions, batch: bool, fmt: str, papers_settings, opening) -> None:
    """`ask --papers`: each paper answered alone, rows written as they are ready."""
    from hea_rag.answer import open_answerer
    from hea_rag.answers import PaperAnswerer, answer_each
    from hea_rag.output import StageStatus, rows_progress, rows_writer

    stream = papers_settings.papers == "all"
    with StageStatus() as shown, open_answerer(*opening, need_retrieval=True,
                                               on_stage=shown) as answerer:
        shown.stop()
        answerer.on_stage = lambda stage: None  # the progress bar tells from here on
        with rows_progress("answering from each paper") as on_progress:
            answer_each(PaperAnswerer(answerer, papers_settings), questions,
                        rows_writer(fmt, stream, batch), batch, on_progress)


def _read_context(context: str | None) -> str | None:
    if context is None or not context.startswith("@"):
        return context
    path = Path(context[1:])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserFacingError(f"{path}: cannot read context ({error.__class__.__name__})") from None


@cli.command(name="eval")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--split", default=None, help="Only items whose `split` field has this value.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N items.")
@click.option("--gold-context", is_flag=True,
              help="Give the model the gold paper's abstract instead of the retrieved context.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write one JSON line per question (answer, gold, rank, scores) here.")
@generator_options
def evaluate(qa_file, split, limit, gold_context, as_json, predictions, model, adapter,
             no_adapter, quantize, max_new_tokens, k, context_tokens, min_score, index_dir) -> None:
    """Score retrieval (Recall@k, MRR) and answers (exact match, token F1, contains, abstention)
    over QA_FILE, JSON Lines of `question`, `answer` and optional `doi`, `abstract_sha1`, `split`."""
    from hea_rag.answer import open_answerer
    from hea_rag.evaluate import Evaluator, load_qa
    from hea_rag.output import print_metrics

    items = load_qa(qa_file, split, limit)
    settings = _ask_settings(k, max_new_tokens, context_tokens, min_score)
    sink = open(predictions, "w", encoding="utf-8") if predictions else None
    try:
        with open_answerer(index_dir, model, adapter, not no_adapter, quantize, settings,
                           need_retrieval=True) as answerer, _progress_bar("evaluating") as bar:
            evaluator = Evaluator(answerer, gold_context)
            metrics = evaluator.run(items, on_row=_eval_row_sink(sink, bar, len(items)))
    finally:
        if sink:
            sink.close()
    metrics.update(model=model, adapter=answerer.generator.adapter, split=split,
                   context="gold" if gold_context else "retrieved")
    print_metrics(metrics, as_json)


def _eval_row_sink(sink, bar, total: int):
    done = 0

    def on_row(row) -> None:
        nonlocal done
        done += 1
        if sink:
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        if bar:
            bar(done, total)

    return on_row


@cli.command()
@click.argument("qa_files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", envvar=config.ENV_MODEL, show_envvar=True, default=config.DEFAULT_MODEL,
              show_default=True, help="Base model: hub id, local folder, or smollm2-135m.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Adapter folder.  [default: INDEX/adapter, which `ask` then uses]")
@click.option("--context", "context_mode", type=click.Choice(["abstract", "given"]),
              default="abstract", show_default=True,
              help="What goes before each question: the indexed abstract holding the answer, "
                   "packed as `ask` packs its best paper, or the file's own context.")
@click.option("--rank", type=click.IntRange(1), default=_TRAIN.rank, show_default=True)
@click.option("--alpha", type=click.IntRange(1), default=_TRAIN.alpha, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1), default=_TRAIN.dropout, show_default=True)
@click.option("--target-modules", default=None,
              help="Comma-separated module names. Default from the architecture "
                   "(Phi: q_proj,k_proj,v_proj,dense; Llama-style: q_proj,k_proj,v_proj,o_proj).")
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=_TRAIN.epochs,
              show_default=True)
@click.option("--max-steps", type=int, default=_TRAIN.max_steps, show_default=True,
              help="Overrides --epochs when > 0.")
@click.option("--lr", type=float, default=_TRAIN.lr, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=_TRAIN.batch_size, show_default=True)
@click.option("--grad-accum", type=click.IntRange(1), default=_TRAIN.grad_accum, show_default=True)
@click.option("--max-length", type=click.IntRange(64), default=_TRAIN.max_length,
              show_default=True, help="Most tokens per example (prompt + answer).")
@click.option("--eval-fraction", type=click.FloatRange(0, 1), default=_TRAIN.eval_fraction,
              show_default=True,
              help="Share of papers held out (items with a `split` field keep theirs).")
@click.option("--seed", type=int, default=_TRAIN.seed, show_default=True)
@click.option("--negatives", "negative_rate", type=click.FloatRange(0, 1),
              default=_TRAIN.negative_rate, show_default=True,
              help="Share of QA pairs also asked of a similar retrieved paper that lacks the "
                   "answer, with the target 'Not reported in this paper.' (taught abstention; "
                   "--context abstract only). 0 turns it off.")
@click.option("--quantize", type=click.Choice(["4bit", "8bit", "none"]), default=None,
              help="Base model precision. Default: 4bit (QLoRA) on CUDA, none on CPU.")
@click.option("--mix", default=None, metavar="NAME=W,...",
              help="Weight of each QA file's examples, by file name without extension: "
                   "`dev_qa=1,synth=2` trains each synth example twice, `=0.5` half of them. "
                   "Files not named weigh 1. The card records it.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing",
              default=_TRAIN.gradient_checkpointing, show_default=True,
              help="Recompute activations in backward: far less memory, ~30% more time per step.")
@click.option("--save-examples", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Only ground the QA files and write the training examples (exact prompts and "
                   "targets, negatives included) to this JSONL, then stop. Pass that file as the "
                   "QA file to train elsewhere, e.g. on a GPU machine without the index.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue an interrupted run from its last checkpoint in OUTPUT/checkpoints "
                   "when data, base model, context and training settings are the same (other "
                   "checkpoints are removed, said on stderr). --no-resume always starts fresh.")
@index_option
def finetune(qa_files, model, output, context_mode, rank, alpha, dropout, target_modules, epochs,
             max_steps, lr, batch_size, grad_accum, max_length, eval_fraction, seed,
             negative_rate, quantize, mix, gradient_checkpointing, save_examples, resume,
             index_dir) -> None:
    """Train a LoRA adapter for MODEL on QA_FILES (upstream HEA QA JSON, SQuAD JSON, or JSONL of
    question/answer with optional context, doi, abstract_sha1, split), in `ask`'s prompt format.
    A file written by --save-examples trains as it is, without the index."""
    from contextlib import redirect_stdout

    from hea_rag.answer import ADAPTER_DIRNAME
    from hea_rag.training import prepare_examples, run_finetune

    settings = TrainSettings(
        rank=rank, alpha=alpha, dropout=dropout, epochs=epochs, max_steps=max_steps, lr=lr,
        target_modules=target_modules.split(",") if target_modules else None, seed=seed,
        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
        eval_fraction=eval_fraction, negative_rate=negative_rate, mix=_parse_mix(mix),
        gradient_checkpointing=gradient_checkpointing)
    if save_examples:
        written = prepare_examples(list(qa_files), model, context_mode, index_dir, settings,
                                   save_examples)
        status(f"finetune: {written} training examples written to {save_examples}")
        return
    output = output or index_dir / ADAPTER_DIRNAME
    with redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout stays for data
        result = run_finetune(list(qa_files), model, output, context_mode, index_dir, settings,
                              quantize, show_progress=sys.stderr.isatty(), resume=resume)
    resumed = f", after step {result.resumed_from_step} restored" if result.resumed_from_step else ""
    status(f"finetune: adapter saved to {output} ({result.steps} steps in {result.seconds:.0f}s"
           f"{resumed}, {result.tokens_per_second:.0f} tokens/s); held-out: {result.metrics}")
    print(json.dumps({"adapter": str(output), "metrics": result.metrics,
                      "train_examples": result.train_examples, "eval_examples": result.eval_examples}))


def _parse_mix(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    weights = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserFacingError(f"--mix: {item!r} is not NAME=WEIGHT") from None
        if weights[name.strip()] < 0 or not name.strip():
            raise UserFacingError(f"--mix: {item!r} is not NAME=WEIGHT with a weight >= 0")
    return weights


@cli.command()
@click.option("--host", default=_SERVE.host, show_default=True,
              help="Address to listen on. Any other than this machine's (127.0.0.1, ::1, "
                   "localhost) needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=_SERVE.port, show_default=True,
              help="Port to listen on; 0 picks a free one (printed on stderr).")
@click.option("--token", envvar=ENV_TOKEN, show_envvar=True, default=None,
              help="Secret every request must carry (`Authorization: Bearer TOKEN`; the page: "
                   "open /?token=TOKEN once).")
@click.option("--queue-size", type=click.IntRange(1, 10000), default=_SERVE.queue_size,
              show_default=True, help="Questions that may wait for the model; more get 503.")
@click.option("--max-upload-mb", type=click.FloatRange(0, min_open=True),
              default=_SERVE.max_upload_bytes / 2**20, show_default=True,
              help="Largest upload (all its files together).")
@generator_options
def serve(host, port, token, queue_size, max_upload_mb, model, adapter, no_adapter, quantize,
          max_new_tokens, k, context_tokens, min_score, index_dir) -> None:
    """Serve a web page and a JSON API (ask, search, info, upload papers) over the index, with
    the model loaded once. Questions queue for the model; searches never wait behind it. A
    new index generation, from `hea-rag index` too, is used as soon as it is committed."""
    from dataclasses import replace

    from hea_rag.server.run import serve as run_server

    settings = replace(_SERVE, host=host, port=port, token=token or None, queue_size=queue_size,
                       max_upload_bytes=int(max_upload_mb * 2**20))
    run_server(index_dir, model, adapter, not no_adapter, quantize,
               _ask_settings(k, max_new_tokens, context_tokens, min_score), settings,
               on_status=lambda message: status(f"hea-rag: {message}"))


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(index_dir, as_json) -> None:
    """Show the index (path, counts, embedder), check its integrity (SQLite quick_check, FAISS
    vectors = passages = manifest counts; exit 1 when it fails), and the machine (versions, CUDA,
    4-bit support)."""
    from hea_rag.info import collect_info, integrity_error, print_info

    report = collect_info(index_dir)
    print_info(report, as_json)
    failure = integrity_error(report)
    if failure:
        raise UserFacingError(failure)


@cli.command()
@index_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSONL file to write. Default: stdout.")
@click.option("--per-paper", type=click.IntRange(1, 1000), default=12, show_default=True,
              help="Most pairs per paper (every statement is asked once before any twice).")
@click.option("--papers", "selection", default="all", show_default=True,
              help="Papers to use: `all`; DOIs, comma-separated; or `exclude:FILE`, FILE listing "
                   "papers to leave out, one per line: a DOI, an abstract sha1, or a JSON object "
                   "with `doi`/`abstract_sha1` (a QA JSONL file excludes its own papers).")
@click.option("--heldout-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of papers whose pairs get split `heldout` (a fixed draw per paper; the "
                   "others get `train`). 0: no split field, finetune makes its own.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the phrasing draw.")
@click.option("--paraphraser", default=None, metavar="MODEL",
              help="Also ask each pair in a causal LM's words (smollm2-135m, a hub id or a "
                   "folder); a rewrite is kept only when it keeps the alloys, properties, values "
                   "and what is asked, and gives no answer away. Slow on a CPU: seconds per pair.")
@click.option("--paraphrase-share", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Share of the pairs given to --paraphraser (a fixed draw per question).")
def synth(index_dir, output, per_paper, selection, heldout_fraction, seed, paraphraser,
          paraphrase_share) -> None:
    """Write question-answer pairs made from the indexed abstracts (JSON Lines: question, answer,
    kind, paper_id, doi, abstract_sha1, start, end, split; `paraphrase_of` on a paraphrase),
    ready for `hea-rag finetune`. Each answer is the span [start, end) of its abstract as
    indexed. A summary goes to stderr."""
    from hea_rag.store import IndexReader
    from hea_rag.synth.source import parse_selection, synth_index

    chosen = parse_selection(selection)
    rewriter = None
    if paraphraser:
        from hea_rag.synth.paraphrase import load_paraphraser

        rewriter = load_paraphraser(paraphraser)
    handle = open(output, "w", encoding="utf-8") if output else sys.stdout
    write = lambda record: handle.write(json.dumps(record, ensure_ascii=False) + "\n")  # noqa: E731
    try:
        with IndexReader(index_dir) as reader:
            summary = synth_index(reader, chosen, write, per_paper, seed, heldout_fraction,
                                  rewriter, paraphrase_share)
    finally:
        if output:
            handle.close()
    status(summary.line())


@cli.command()
@click.argument("terms", nargs=-1)
@click.option("--source", type=click.Choice(["openalex", "crossref", "arxiv"]), default=None,
              help="API to ask.  [default: openalex; arxiv for --arxiv ids]")
@click.option("--doi", "as_dois", is_flag=True, help="TERMS are DOIs to look up.")
@click.option("--arxiv", "as_arxiv", is_flag=True,
              help="TERMS are arXiv ids to look up (2104.12255, 2104.12255v1, hep-th/9901001).")
@click.option("--ids", "ids_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Look up the DOIs and arXiv ids in this file (a list, BibTeX, RIS, CSV...).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Published on or after (search).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Published on or before (search).")
@click.option("--limit", type=click.IntRange(1), default=config.DEFAULT_FETCH_LIMIT,
              show_default=True, help="Most works a search returns.")
@click.option("--title", "title_only", is_flag=True, help="Match the search words in titles only.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSONL file to write. Default: stdout (nothing with --add).")
@click.option("--add", is_flag=True,
              help="Add the works that have an abstract to the index, as `index` would (giving "
                   "--index DIR on the command line implies it).")
@click.option("--complete", is_flag=True,
              help="Fill in the title, authors, year and journal of indexed papers that have a "
                   "DOI but no title.")
@click.option("--mailto", envvar=config.ENV_MAILTO, show_envvar=True,
              help="Your e-mail address, for the OpenAlex and Crossref polite pools.")
@click.option("--refresh", is_flag=True, help="Ask the APIs again instead of using the cache.")
@index_option
def fetch(terms, source, as_dois, as_arxiv, ids_file, since, until, limit, title_only, output,
          add, complete, mailto, refresh, index_dir) -> None:
    """Search OpenAlex, Crossref or arXiv for TERMS, or look up works by id, and write one JSON
    record per work (doi, title, abstract, year, authors, journal, source, url, retrieved_at).
    Answers are cached on disk, so a rerun works offline."""
    from hea_rag.sources import fetch as fetching
    from hea_rag.sources.client import ApiClient, ClientSettings

    source_of_index = click.get_current_context().get_parameter_source("index_dir")
    add = add or source_of_index is click.core.ParameterSource.COMMANDLINE
    request = _fetch_request(terms, source, as_dois, as_arxiv, ids_file, since, until, limit,
                             title_only, complete)
    with ApiClient(ClientSettings.from_env(mailto, refresh)) as client:
        if complete:
            done = fetching.complete(client, index_dir, source, config.DEFAULT_LOCK_TIMEOUT)
            status(f"{index_dir}: filled in {done.changed} of {done.asked} papers with a DOI "
                   "but no title")
            return _end_fetch(done.result)
        result = fetching.run(client, request)
    if output or not add:
        _write_works(result.works, output)
    if add and result.works:
        _index_works(result.works, index_dir)
    _end_fetch(result)


def _fetch_request(terms, source, as_dois, as_arxiv, ids_file, since, until, limit, title_only,
                   complete):
    """The FetchRequest the options describe; a UsageError for options that do not go together."""
    from hea_rag.sources.fetch import FetchRequest, read_ids

    modes = [bool(terms) and not (as_dois or as_arxiv), as_dois or as_arxiv, bool(ids_file), complete]
    if sum(modes) != 1 or (as_dois and as_arxiv) or ((as_dois or as_arxiv) and not terms):
        raise click.UsageError("give search TERMS, or --doi/--arxiv with ids, or --ids FILE, "
                               "or --complete: one of them")
    if (since or until or title_only) and not modes[0]:
        raise click.UsageError("--since, --until and --title apply to searches")
    dois, arxiv_ids = read_ids(ids_file) if ids_file else ([], [])
    return FetchRequest(
        query=" ".join(terms) if modes[0] else None,
        dois=list(terms) if as_dois else dois, arxiv_ids=list(terms) if as_arxiv else arxiv_ids,
        source=source, since=since.date().isoformat() if since else None,
        until=until.date().isoformat() if until else None, limit=limit, title_only=title_only)


def _write_works(works, output: Path | None) -> None:
    handle = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for work in works:
            handle.write(json.dumps(work.as_json(), ensure_ascii=False) + "\n")
    finally:
        if output:
            handle.close()


def _index_works(works, index_dir: Path) -> None:
    """The works through `index`'s path: same dedup, same summary; no abstract, no paper."""
    from hea_rag.indexer import RecordSource, index_paths

    records = RecordSource("fetched works", [work.as_record() for work in works])
    with _progress_bar("embedding passages") as on_progress:
        summary = index_paths([records], index_dir, on_progress=on_progress, on_wait=lambda: status(
            f"waiting for another indexing run to release {index_dir} ..."))
    _report_index_summary(summary, index_dir)


def _end_fetch(result) -> None:
    """One line per id that got no work, then the error that ended the run, if any; exit 1
    when either happened."""
    if result.works:
        without = sum(not work.abstract for work in result.works)
        status(f"fetched {len(result.works)} works ({without} without an abstract, "
               f"{result.cached} from the cache)")
    for missing in result.missing:
        status(f"hea-rag: error: {missing.line()}")
    if result.error:
        raise UserFacingError(str(result.error))
    if result.missing:
        raise click.exceptions.Exit(1)


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


@contextmanager
def _progress_bar(description: str):
    """A rich progress bar on a terminal; silence in a pipe or a log."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _report_index_summary(summary, index_dir: Path) -> None:
    done = (f"rebuilt from {summary.kept} stored papers, added {summary.added} papers"
            if summary.rebuilt else f"added {summary.added} papers")
    status(
        f"{index_dir}: {done} ({summary.passages} passages), "
        f"{summary.duplicates} duplicates, {len(summary.skipped)} skipped, "
        f"{len(summary.failed)} failed; {summary.papers_total} papers in the index "
        f"({summary.seconds:.1f}s)"
    )
    for note in summary.skipped:
        status(f"  skipped {note.where}: {note.reason}")
    for note in summary.failed:
        status(f"  failed {note.where}: {note.reason}")


# A reader that closed our output early (`| head`): stop quietly with the status a Unix tool
# killed by SIGPIPE has (128 + 13), not a Python error.
CLOSED_PIPE_EXIT = 141


def _stop_at_closed_pipe() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
    sys.exit(CLOSED_PIPE_EXIT)


def main() -> None:
    try:
        cli(prog_name="hea-rag")
    except SystemExit:
        try:
            sys.stdout.flush()  # what is still buffered: the reader may be gone already
        except BrokenPipeError:
            _stop_at_closed_pipe()
        raise
