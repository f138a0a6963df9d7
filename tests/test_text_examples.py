"""Text models: max-over-time pooling (``adaptive_max_pool1d``), a text-CNN forward/backward
against PyTorch, the text loaders of ``nnx.data.text``, the char-LSTM helpers of
``nnx.char_lm``, and short runs of the three text examples and of ``nnx train char-lstm``
(skipped without ``$NNX_DATA_DIR/text/tinyshakespeare.txt``) whose losses must fall."""

import importlib.util
import math
import os
import pathlib

import numpy as np
import pytest

import nnx
from nnx import _kernels as K
from nnx import _reference as R
from nnx import char_lm
from nnx.data import text
from nnx.nn import AdaptiveMaxPool1d, Conv1d, Embedding, Linear
from nnx.nn import functional as F
from nnx.testing import gradcheck

RNG = np.random.default_rng(11)
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


# ---------------------------------------------------------------------------------------------
# Max-over-time pooling


@pytest.mark.parametrize("length, size", [(1, 1), (7, 1), (8, 2), (7, 3), (5, 5), (3, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_max_pool1d_matches_reference(length, size, dtype):
    x = RNG.standard_normal((3, 4, length)).astype(dtype)
    x[0, 0] = 1.0  # ties: the first position wins
    y, idx = K.adaptive_max_pool1d_forward(x, size)
    ry, ridx = R.adaptive_max_pool1d_forward(x, size)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    g = RNG.standard_normal(y.shape).astype(dtype)
    gx = K.adaptive_max_pool1d_backward(g, idx, x.shape)
    np.testing.assert_allclose(gx, R.adaptive_max_pool1d_backward(g, idx, x.shape), rtol=1e-6)


def test_adaptive_max_pool1d_matches_torch_and_gradchecks():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 11))
    for size in (1, 4, (3,)):
        tx = torch.tensor(x, requires_grad=True)
        nx = nnx.tensor(x, requires_grad=True)
        t_y, t_i = torch.nn.AdaptiveMaxPool1d(size, return_indices=True)(tx)
        n_y, n_i = AdaptiveMaxPool1d(size, return_indices=True)(nx)
        np.testing.assert_array_equal(n_y.data, t_y.detach().numpy())
        np.testing.assert_array_equal(n_i.data, t_i.numpy())
        (t_y * t_y).sum().backward()
        (n_y * n_y).sum().backward()
        np.testing.assert_allclose(nx.grad.data, tx.grad.numpy(), rtol=1e-12)
    assert repr(AdaptiveMaxPool1d((2,))) == repr(torch.nn.AdaptiveMaxPool1d((2,)))
    spread = nnx.tensor(RNG.permutation(30).reshape(2, 3, 5) * 0.1, requires_grad=True)
    assert gradcheck(lambda t: F.adaptive_max_pool1d(t, 2), spread)
    unbatched = F.adaptive_max_pool1d(nnx.tensor(x[0]), 1)
    np.testing.assert_array_equal(unbatched.data, x[0].max(axis=1, keepdims=True))


def test_adaptive_max_pool1d_errors():
    with pytest.raises(ValueError, match="must be 3-D"):
        F.adaptive_max_pool1d(nnx.tensor(np.zeros(4)), 1)
    with pytest.raises(ValueError, match="output_size must be positive"):
        F.adaptive_max_pool1d(nnx.tensor(np.zeros((1, 2, 4))), 0)
    with pytest.raises(ValueError, match="length 0"):
        F.adaptive_max_pool1d(nnx.tensor(np.zeros((1, 2, 0))), 1)
    with pytest.raises(ValueError, match="output_size must be positive"):
        AdaptiveMaxPool1d(-1)


def test_text_cnn_block_matches_torch():
    """Embedding -> Conv1d -> ReLU -> max over time -> Linear, forward and every gradient."""
    torch = pytest.importorskip("torch")
    t_emb, t_conv, t_fc = (torch.nn.Embedding(20, 6, padding_idx=0), torch.nn.Conv1d(6, 5, 3),
                           torch.nn.Linear(5, 4))
    n_emb, n_conv, n_fc = Embedding(20, 6, padding_idx=0), Conv1d(6, 5, 3), Linear(5, 4)
    for t, n in ((t_emb, n_emb), (t_conv, n_conv), (t_fc, n_fc)):
        n.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    ids = RNG.integers(0, 20, (3, 9))
    ids[:, 7:] = 0  # padding at the end of the lines
    t_out = t_fc(torch.relu(t_conv(t_emb(torch.tensor(ids)).transpose(1, 2))).amax(dim=2))
    n_out = n_fc(AdaptiveMaxPool1d(1)(F.relu(n_conv(n_emb(nnx.tensor(ids)).transpose(1, 2))))
                 .squeeze(2))
    np.testing.assert_allclose(n_out.data, t_out.detach().numpy(), atol=1e-5)
    target = RNG.integers(0, 4, 3)
    torch.nn.functional.cross_entropy(t_out, torch.tensor(target)).backward()
    F.cross_entropy(n_out, nnx.tensor(target)).backward()
    for t, n in ((t_emb, n_emb), (t_conv, n_conv), (t_fc, n_fc)):
        for (name, tp), (_, np_) in zip(t.named_parameters(), n.named_parameters()):
            np.testing.assert_allclose(np_.grad.data, tp.grad.numpy(), atol=1e-5, err_msg=name)


# ---------------------------------------------------------------------------------------------
# nnx.data.text


def test_vocab_build_encode_decode():
    tokens = "the cat and the dog and the end".split()
    v = text.Vocab.build(tokens, specials=("<pad>",), unk="<unk>")
    assert v.itos == ["<pad>", "the", "and", "cat", "dog", "end", "<unk>"]
    assert v.counts.tolist() == [0, 3, 2, 1, 1, 1, 0]
    np.testing.assert_array_equal(v.encode(["the", "bird", "dog"]), [1, 6, 4])
    assert v.decode(np.array([3, 0])) == ["cat", "<pad>"]
    small = text.Vocab.build(tokens, min_freq=2, unk="<unk>")
    assert small.itos == ["the", "and", "<unk>"] and small.counts.tolist() == [3, 2, 3]
    capped = text.Vocab.build(tokens, max_size=3, specials=("<pad>",), unk="<unk>")
    assert capped.itos == ["<pad>", "the", "<unk>"] and len(capped) == 3
    chars = text.char_vocab("hello")
    assert chars.itos == ["e", "h", "l", "o"] and "".join(chars.decode(chars.encode("hole"))) \
        == "hole"
    with pytest.raises(KeyError, match="'z' is not in the vocabulary"):
        chars.encode("zeal")
    with pytest.raises(IndexError, match=r"ids must lie in \[0, 4\)"):
        chars.decode([4])
    with pytest.raises(ValueError, match="appears more than once"):
        text.Vocab(["a", "b", "a"])


def test_words_speeches_and_streams():
    assert text.words("O'er the hill, I know't: 'tis 2 MEN!") == \
        ["o'er", "the", "hill", "i", "know't", "tis", "men"]
    script = ("First Citizen:\nBefore we proceed,\nhear me.\n\nAll:\nSpeak, speak.\n\n"
              "A stray line\n\nROMEO:\nAy.\n")
    assert text.speeches(script) == [("First Citizen", ["Before we proceed,", "hear me."]),
                                     ("All", ["Speak, speak."]), ("ROMEO", ["Ay."])]
    ids = np.arange(23)
    train, val = text.split_stream(ids, 0.2)
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)
    assert len(val) == 5
    s = text.streams(ids, 4)
    assert s.shape == (4, 5) and s.dtype == np.int64
    np.testing.assert_array_equal(s[1], [5, 6, 7, 8, 9])
    with pytest.raises(ValueError, match="too few"):
        text.streams(ids, 20)
    with pytest.raises(ValueError, match="val_fraction"):
        text.split_stream(ids, 1.0)


def test_find_text_search_order(tmp_path, monkeypatch):
    (tmp_path / "env" / "text").mkdir(parents=True)
    (tmp_path / "env" / "text" / "corpus.txt").write_text("from the env")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "corpus.txt").write_text("from root")
    monkeypatch.setenv("NNX_DATA_DIR", str(tmp_path / "env"))
    assert text.load_text("corpus.txt", tmp_path / "root") == "from root"
    assert text.load_text("corpus.txt") == "from the env"
    with pytest.raises(FileNotFoundError, match="missing.txt.*looked in"):
        text.find_text("missing.txt", tmp_path / "root")


# ---------------------------------------------------------------------------------------------
# nnx.char_lm


def test_untrained_uniform_model_scores_log2_vocab_bits():
    vocab = text.char_vocab("abcdefg")
    model = char_lm.CharLSTM(len(vocab), 4, 8)
    nnx.nn.init.zeros_(model.fc.weight)
    nnx.nn.init.zeros_(model.fc.bias)  # every logit 0: a uniform prediction
    ids = RNG.integers(0, len(vocab), 500)
    assert char_lm.bits_per_char(model, ids, batch_size=4, seq_len=16) == \
        pytest.approx(math.log2(len(vocab)), rel=1e-6)


def test_sampling_at_low_temperature_is_greedy():
    nnx.manual_seed(0)
    vocab = text.char_vocab("abcdefghij")
    model = char_lm.CharLSTM(len(vocab), 4, 8)
    samples = []
    for seed in (1, 2):
        nnx.manual_seed(seed)
        samples.append(char_lm.sample(model, vocab, "abc", 20, temperature=1e-4))
    assert samples[0] == samples[1] and samples[0].startswith("abc") and len(samples[0]) == 23
    nnx.manual_seed(1)
    hot = {char_lm.sample(model, vocab, "a", 30, temperature=50.0) for _ in range(3)}
    assert len(hot) == 3  # near-uniform draws differ
    with pytest.raises(ValueError, match="temperature"):
        char_lm.sample(model, vocab, "a", 5, temperature=0)


# ---------------------------------------------------------------------------------------------
# The examples and the command line, on the real corpus


@pytest.fixture(scope="module")
def data_root():
    root = os.environ.get("NNX_DATA_DIR")
    if not root:
        pytest.skip("NNX_DATA_DIR is not set: text example runs skipped")
    if not os.path.isfile(os.path.join(root, "text", text.TINY_SHAKESPEARE)):
        pytest.skip(f"{text.TINY_SHAKESPEARE} not found under {root}/text")
    return root


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_char_lstm_example_learns(data_root, threads):
    ex = load_example("char_lstm_shakespeare")
    args = ex.parse_args(["--steps", "30", "--limit", "60000", "--hidden", "64",
                          "--eval-every", "15", "--sample-length", "40", "--threads", "1"])
    assert (args.embedding_dim, args.batch_size, args.seq_len, args.lr, args.clip) == \
        (64, 32, 64, 2e-3, 5.0)
    h = ex.run(args)
    assert h["step"] == [15, 30]
    uniform = math.log2(h["vocab_size"])
    assert h["val_bpc"][-1] < h["val_bpc"][0] < uniform
    assert h["val_bpc"][-1] < uniform - 1.0
    assert h["sample"].startswith("ROMEO:") and len(h["sample"]) == len("ROMEO:") + 40


def test_cli_trains_char_lstm(data_root, threads, capsys):
    from nnx.__main__ import main

    code = main(["train", "char-lstm", "--steps", "20", "--limit", "40000", "--hidden", "32",
                 "--eval-every", "10", "--sample-length", "20", "--threads", "1",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    bpc = float(out.split("validation loss")[1].split()[0])
    assert bpc < math.log2(65) - 0.5


@pytest.mark.parametrize("loss", ["negative", "softmax"])
def test_word2vec_example_learns(data_root, threads, loss):
    ex = load_example("word2vec_cbow")
    result = ex.run(ex.parse_args(["--steps", "60", "--limit", "200000", "--dim", "32",
                                   "--loss", loss, "--threads", "1"]))
    curve = result["curve"]
    assert len(curve) == 2 and curve[1] < curve[0] - 0.2
    vectors = result["vectors"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert set(result["neighbours"]) <= set(ex.QUERIES) and result["neighbours"]


def test_cbow_negative_sampling_loss_at_initialisation():
    ex = load_example("word2vec_cbow")
    nnx.manual_seed(0)
    model = ex.CBOW(50, 8, "negative")  # output vectors start at zero: every score is 0
    loss = model.loss(RNG.integers(0, 50, (16, 4)), RNG.integers(0, 50, 16),
                      RNG.integers(0, 50, (16, 5)))
    assert loss.item() == pytest.approx(6 * math.log(2), rel=1e-6)
    contexts, targets = ex.cbow_examples(np.arange(10), 2)
    np.testing.assert_array_equal(contexts[0], [0, 1, 3, 4])
    np.testing.assert_array_equal(targets, np.arange(2, 8))


def test_text_cnn_example_learns(data_root, threads):
    ex = load_example("text_cnn")
    result = ex.run(ex.parse_args(["--steps", "60", "--classes", "3", "--threads", "1"]))
    curve = result["curve"]
    assert len(curve) == 3 and curve[-1] < curve[0]
    assert result["train_accuracy"] > result["baseline"] + 0.1
    assert result["test_accuracy"] > result["baseline"]
