#include "basin/train/pretrain.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/core/version.h"
#include "basin/data/corpus.h"
#include "basin/models/load.h"
#include "basin/text/tokenizer.h"
#include "state.h"

#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <torch/version.h>

namespace basin {
namespace {

using Clock = std::chrono::steady_clock;
using namespace train_detail;

std::int32_t special_id(const text::Tokenizer& tokenizer, std::initializer_list<const char*> names, const char* what) {
    for (const char* n : names) {
        std::int32_t id = tokenizer.token_to_id(n);
        if (id >= 0) return id;
    }
    fail("pretraining: the tokenizer has no ", what, " token (looked for ", *names.begin(), ")");
}

// Tokenizes every line of every file (no special tokens), joined per file; files are separated
// by the separator token. Returns the token stream.
std::vector<std::int32_t> tokenize_corpus(const Corpus& corpus, const text::Tokenizer& tokenizer, std::int32_t sep,
                                          int threads) {
    std::vector<std::string_view> lines;
    std::vector<std::size_t> file_end; // index into lines where each file ends
    for (const auto& f : corpus.files) {
        std::size_t start = 0;
        while (start < f.text.size()) {
            std::size_t end = f.text.find('\n', start);
            if (end == std::string::npos) end = f.text.size();
            if (end > start) lines.push_back(std::string_view(f.text).substr(start, end - start));
            start = end + 1;
        }
        file_end.push_back(lines.size());
    }
    std::vector<std::vector<std::int32_t>> ids(lines.size());
    std::size_t workers = threads > 0 ? std::size_t(threads) : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (std::size_t w = 0; w < workers; ++w)
        pool.emplace_back([&, w] {
            for (std::size_t i = w; i < lines.size(); i += workers)
                ids[i] = tokenizer.encode(lines[i], std::nullopt, /*add_special_tokens=*/false).ids;
        });
    for (auto& t : pool)
        t.join();
    std::vector<std::int32_t> stream;
    std::size_t line = 0;
    for (std::size_t f = 0; f < file_end.size(); ++f) {
        for (; line < file_end[f]; ++line)
            stream.insert(stream.end(), ids[line].begin(), ids[line].end());
        stream.push_back(sep);
    }
    return stream;
}

struct Masked {
    torch::Tensor input_ids, selected, labels; // [B, T] long, [B, T] bool, [M] long
};

// 15% of the non-special positions are selected; of those 80% -> mask, 10% -> random, 10% kept.
Masked mask_batch(const std::vector<std::vector<std::int32_t>>& sequences, std::uint64_t seed, double prob,
                  std::int32_t mask_id, std::int64_t vocab) {
    const auto B = std::int64_t(sequences.size()), T = std::int64_t(sequences.front().size());
    auto ids = torch::empty({B, T}, torch::kLong);
    auto selected = torch::zeros({B, T}, torch::kBool);
    auto ids_a = ids.accessor<std::int64_t, 2>();
    auto sel_a = selected.accessor<bool, 2>();
    std::vector<std::int64_t> labels;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < T; ++t) {
            const std::int32_t original = sequences[std::size_t(b)][std::size_t(t)];
            ids_a[b][t] = original;
            const bool special = t == 0 || t == T - 1; // <s> ... </s>
            if (special || uniform(rng) >= prob) continue;
            sel_a[b][t] = true;
            labels.push_back(original);
            const double r = uniform(rng);
            if (r < 0.8)
                ids_a[b][t] = mask_id;
            else if (r < 0.9)
                ids_a[b][t] = std::int64_t(rng() % std::uint64_t(vocab));
        }
    if (labels.empty()) { // guarantee at least one prediction per batch
        sel_a[0][1] = true;
        labels.push_back(ids_a[0][1]);
        ids_a[0][1] = mask_id;
    }
    return {ids, selected, torch::tensor(labels, torch::kLong)};
}

Dtype check_pretrain_options(const PretrainOptions& o) {
    BASIN_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr: the learning rate must be positive, got ", o.lr);
    BASIN_CHECK(o.max_steps > 0, "--max-steps must be positive");
    BASIN_CHECK(o.batch_size > 0, "--batch-size must be positive");
    BASIN_CHECK(o.max_length >= 8, "--max-length must be at least 8, got ", o.max_length);
    BASIN_CHECK(o.mask_prob > 0 && o.mask_prob < 1, "--mask-prob must be in (0, 1)");
    BASIN_CHECK(o.heldout_fraction > 0 && o.heldout_fraction < 0.5, "--heldout-fraction must be in (0, 0.5)");
    Dtype out_dtype;
    BASIN_CHECK(parse_dtype(o.dtype, &out_dtype) &&
                    (out_dtype == Dtype::F32 || out_dtype == Dtype::F16 || out_dtype == Dtype::BF16),
                "--dtype: expected F32, F16 or BF16, got '", o.dtype, "'");
    return out_dtype;
}

// The model to pretrain as the tokenizer and config describe it (they must agree), with the
// special tokens a sequence is framed and masked with.
struct ModelSpec {
    text::Tokenizer tokenizer;
    HfConfig hf;
    EncoderConfig config;
    std::int32_t cls = 0, sep = 0, mask_id = 0;
};

ModelSpec read_model_spec(const PretrainOptions& o) {
    auto tokenizer = text::Tokenizer::from_file(o.tokenizer);
    HfConfig hf = HfConfig::load(o.config);
    if (hf.architectures.empty() || hf.architectures.front().find("ForMaskedLM") == std::string::npos)
        hf.architectures = {hf.model_type == "bert" ? "BertForMaskedLM" : "RobertaForMaskedLM"};
    if (hf.model_type.empty()) hf.model_type = "roberta";
    BASIN_CHECK(std::int64_t(tokenizer.vocab_size()) == hf.vocab_size, o.tokenizer.string(), ": the tokenizer has ",
                tokenizer.vocab_size(), " tokens but ", o.config.string(), " says vocab_size ", hf.vocab_size,
                "; they must agree");
    EncoderConfig config = EncoderConfig::resolve(hf, o.config.string());
    const std::size_t model_max = std::size_t(config.max_positions - config.position_offset());
    BASIN_CHECK(o.max_length <= model_max, "--max-length ", o.max_length, " exceeds the model's ", model_max,
                " positions");
    const bool bert = config.family == ModelFamily::Bert;
    const std::int32_t cls = special_id(tokenizer, {bert ? "[CLS]" : "<s>"}, "start");
    const std::int32_t sep = special_id(tokenizer, {bert ? "[SEP]" : "</s>"}, "separator");
    const std::int32_t mask_id = special_id(tokenizer, {bert ? "[MASK]" : "<mask>"}, "mask");
    return {std::move(tokenizer), std::move(hf), std::move(config), cls, sep, mask_id};
}

// The corpus as one token stream, cut into blocks of max_length tokens: <s> + chunk + </s>.
struct CorpusBlocks {
    Corpus corpus;
    std::vector<std::int32_t> stream;
    PretrainBlocks split;
    std::int32_t cls = 0, sep = 0;
    std::size_t max_length = 0;

    std::vector<std::int32_t> sequence(std::size_t block) const {
        std::vector<std::int32_t> s;
        s.reserve(max_length);
        s.push_back(cls);
        s.insert(s.end(), stream.begin() + std::ptrdiff_t(block * split.chunk),
                 stream.begin() + std::ptrdiff_t((block + 1) * split.chunk));
        s.push_back(sep);
        return s;
    }
};

CorpusBlocks read_corpus_blocks(const PretrainOptions& o, const ModelSpec& spec) {
    const auto t0 = Clock::now();
    CorpusBlocks data;
    data.corpus = read_corpus(o.corpus, [&](const std::string& w) {
        if (o.log) o.log("warning: " + w);
    });
    data.stream = tokenize_corpus(data.corpus, spec.tokenizer, spec.sep, o.threads);
    data.split = plan_pretrain_blocks(data.stream.size(), o);
    data.cls = spec.cls, data.sep = spec.sep, data.max_length = o.max_length;
    if (o.log)
        o.log(str("corpus: ", data.corpus.files.size(), " files (", data.corpus.skipped, " skipped), ",
                  data.corpus.bytes, " bytes, ", data.stream.size(), " tokens -> ", data.split.train.size(),
                  " training and ", data.split.heldout.size(), " held-out sequences of ", o.max_length, " tokens (",
                  std::chrono::duration<double>(Clock::now() - t0).count(), " s)"));
    return data;
}

RunIdentity identify_pretrain(const PretrainOptions& o, const CorpusBlocks& data, const HfConfig& hf) {
    nlohmann::json options = {{"seed", o.seed},
                              {"max_steps", o.max_steps},
                              {"batch_size", o.batch_size},
                              {"max_length", o.max_length},
                              {"lr", o.lr},
                              {"warmup_ratio", o.warmup_ratio},
                              {"weight_decay", o.weight_decay},
                              {"max_grad_norm", o.max_grad_norm},
                              {"mask_prob", o.mask_prob},
                              {"heldout_fraction", o.heldout_fraction},
                              {"heldout_max", o.heldout_max},
                              {"eval_every", o.eval_every},
                              {"device", o.device},
                              {"threads", o.threads}};
    Sha256 corpus_hash;
    for (const auto& f : data.corpus.files) {
        const std::string name = f.path.filename().string();
        corpus_hash.update(name.data(), name.size());
        corpus_hash.update(f.text.data(), f.text.size());
    }
    nlohmann::json inputs = {
        {"corpus",
         {{"path", fs::absolute(o.corpus).string()},
          {"files", data.corpus.files.size()},
          {"skipped_files", data.corpus.skipped},
          {"bytes", data.corpus.bytes},
          {"tokens", data.stream.size()},
          {"sha256", corpus_hash.hex_digest()}}},
        {"tokenizer", {{"path", fs::absolute(o.tokenizer).string()}, {"sha256", sha256_file(o.tokenizer)}}},
        {"config", hf.to_json()}};
    return identify_run(std::move(options), std::move(inputs));
}

nlohmann::json heldout_json(const std::vector<HeldoutMetrics>& heldout) {
    nlohmann::json h = nlohmann::json::array();
    for (const auto& m : heldout)
        h.push_back({{"step", m.step}, {"loss", m.loss}, {"accuracy", m.accuracy}, {"tokens_seen", m.tokens_seen}});
    return h;
}

// The masked-LM steps from a fresh or a resumed state, the held-out loss at the start, every
// eval_every steps and at the end; the state is saved every save_every steps, and on a signal,
// which then stops cleanly.
class MlmLoop {
  public:
    MlmLoop(const PretrainOptions& o, EncoderModel& model, torch::optim::Optimizer& optimizer, const CorpusBlocks& data,
            const ModelSpec& spec, StateStore& store, const fs::path& out)
        : o_(o), model_(model), optimizer_(optimizer), data_(data), spec_(spec), store_(store), out_(out),
          device_(o.device), warmup_(std::int64_t(std::ceil(double(o.max_steps) * o.warmup_ratio))) {}

    // the counters of a saved state; true when there was one
    bool resume() {
        if (!store_.exists()) return false;
        auto c = store_.load(model_, optimizer_);
        step_ = c.at("step");
        tokens_seen_ = c.at("tokens_seen");
        elapsed_before_ = c.at("elapsed");
        for (const auto& h : c.at("heldout"))
            heldout_.push_back({h.at("step"), h.at("loss"), h.at("accuracy"), h.at("tokens_seen")});
        log(str("resuming from ", store_.dir().string(), " at step ", step_, " of ", o_.max_steps));
        return true;
    }

    void run(bool resumed) {
        if (!resumed) evaluate_and_log(); // the starting point, so that the record shows what pretraining gained
        model_->train();
        run_start_ = last_log_ = Clock::now();
        while (step_ < o_.max_steps) {
            train_step();
            if (o_.eval_every > 0 && step_ % o_.eval_every == 0 && step_ < o_.max_steps) evaluate_and_log();
            if (Clock::now() - last_log_ > std::chrono::seconds(15) || step_ == o_.max_steps) log_progress();
            if (o_.save_every > 0 && step_ % o_.save_every == 0 && step_ < o_.max_steps) save();
            if (o_.stop_after_step >= 0 && step_ == o_.stop_after_step) std::_Exit(137); // simulated kill
            if (interrupted()) { // a clean stop: keep the work so far for the same command to resume
                save();
                throw Interrupted(interrupt_signal(),
                                  str("interrupted by ", signal_name(interrupt_signal()), " at step ", step_, " of ",
                                      o_.max_steps, "; the same command resumes"));
            }
        }
        const auto [loss, accuracy] = evaluate_heldout();
        heldout_.push_back({step_, loss, accuracy, tokens_seen_});
        log(str("final held-out MLM loss ", loss, ", accuracy ", accuracy));
    }

    std::int64_t step() const { return step_; }
    std::int64_t tokens_seen() const { return tokens_seen_; }
    const std::vector<HeldoutMetrics>& heldout() const { return heldout_; }
    double seconds() const {
        return elapsed_before_ + std::chrono::duration<double>(Clock::now() - run_start_).count();
    }

  private:
    void log(const std::string& line) const {
        if (o_.log) o_.log(line);
    }
    void save() {
        store_.save(model_, optimizer_,
                    {{"step", step_},
                     {"tokens_seen", tokens_seen_},
                     {"elapsed", seconds()},
                     {"heldout", heldout_json(heldout_)}});
    }

    void train_step() {
        const auto& train = data_.split.train;
        const std::size_t per_epoch = train.size() / o_.batch_size > 0 ? train.size() / o_.batch_size : 1;
        const auto epoch = std::int64_t(std::size_t(step_) / per_epoch);
        const std::size_t in_epoch = std::size_t(step_) % per_epoch;
        const auto order = permutation(train.size(), mix_seed(o_.seed, epoch));
        std::vector<std::vector<std::int32_t>> seqs;
        for (std::size_t k = 0; k < o_.batch_size; ++k)
            seqs.push_back(data_.sequence(train[order[(in_epoch * o_.batch_size + k) % order.size()]]));
        auto m = mask_batch(seqs, mix_seed(o_.seed, 1'000'000 + step_), o_.mask_prob, spec_.mask_id,
                            spec_.config.vocab_size);
        auto ids = m.input_ids.to(device_);
        optimizer_.zero_grad();
        auto logits = model_->mlm_logits_at(ids, torch::ones_like(ids), m.selected.to(device_));
        auto loss = torch::nn::functional::cross_entropy(logits, m.labels.to(device_));
        const double value = loss.item<double>();
        BASIN_CHECK(std::isfinite(value), "pretraining stopped at step ", step_ + 1, ": the loss is ", value,
                    "; lower --lr. Nothing was written to ", out_.string());
        loss.backward();
        clip_gradients(optimizer_, o_.max_grad_norm);
        set_lr(optimizer_, o_.lr * lr_factor(step_, warmup_, o_.max_steps));
        optimizer_.step();
        ++step_;
        tokens_seen_ += std::int64_t(o_.batch_size * o_.max_length);
        loss_sum_ += value;
        ++loss_count_;
    }

    void log_progress() {
        const double secs = std::chrono::duration<double>(Clock::now() - run_start_).count();
        const double rate = double(tokens_seen_) / std::max(1e-9, secs + elapsed_before_);
        log(str("step ", step_, "/", o_.max_steps, " loss ", loss_sum_ / double(loss_count_), " lr ",
                o_.lr * lr_factor(step_, warmup_, o_.max_steps), " ", int(rate), " tokens/s, ",
                int(double(o_.max_steps - step_) * double(o_.batch_size * o_.max_length) / std::max(1.0, rate)),
                " s left"));
        loss_sum_ = 0;
        loss_count_ = 0;
        last_log_ = Clock::now();
    }

    void evaluate_and_log() {
        const auto [loss, accuracy] = evaluate_heldout();
        heldout_.push_back({step_, loss, accuracy, tokens_seen_});
        log(str("step ", step_, ": held-out MLM loss ", loss, ", accuracy ", accuracy));
    }

    // (mean loss, accuracy) of the masked predictions on the held-out blocks, masked the same way
    // every time
    std::pair<double, double> evaluate_heldout() {
        const auto& blocks = data_.split.heldout;
        model_->eval();
        torch::NoGradGuard no_grad;
        double loss = 0, correct = 0, count = 0;
        for (std::size_t i = 0; i < blocks.size(); i += o_.batch_size) {
            std::vector<std::vector<std::int32_t>> seqs;
            for (std::size_t k = i; k < std::min(blocks.size(), i + o_.batch_size); ++k)
                seqs.push_back(data_.sequence(blocks[k]));
            auto m = mask_batch(seqs, mix_seed(o_.seed, -1000 - std::int64_t(i)), o_.mask_prob, spec_.mask_id,
                                spec_.config.vocab_size);
            auto ids = m.input_ids.to(device_);
            auto logits = model_->mlm_logits_at(ids, torch::ones_like(ids), m.selected.to(device_)).to(torch::kCPU);
            loss += torch::nn::functional::cross_entropy(
                        logits, m.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                        .item<double>();
            correct += logits.argmax(1).eq(m.labels).sum().item<double>();
            count += double(m.labels.size(0));
        }
        model_->train();
        return {loss / count, correct / count};
    }

    const PretrainOptions& o_;
    EncoderModel& model_;
    torch::optim::Optimizer& optimizer_;
    const CorpusBlocks& data_;
    const ModelSpec& spec_;
    StateStore& store_;
    const fs::path& out_;
    const torch::Device device_;
    const std::int64_t warmup_;
    std::int64_t step_ = 0, tokens_seen_ = 0, loss_count_ = 0;
    double elapsed_before_ = 0, loss_sum_ = 0;
    std::vector<HeldoutMetrics> heldout_;
    Clock::time_point run_start_ = Clock::now(), last_log_ = Clock::now();
};

} // namespace

PretrainBlocks plan_pretrain_blocks(std::size_t tokens, const PretrainOptions& o) {
    PretrainBlocks p;
    p.chunk = o.max_length - 2;
    const std::size_t blocks = tokens / p.chunk;
    p.every = std::max<std::size_t>(2, std::size_t(std::llround(1.0 / o.heldout_fraction)));
    for (std::size_t b = 0; b < blocks; ++b)
        (b % p.every == p.every - 1 ? p.heldout : p.train).push_back(b);
    BASIN_CHECK(!p.train.empty() && !p.heldout.empty(), o.corpus.string(), ": corpus too small: ", tokens,
                " tokens make ", blocks, " sequences of ", o.max_length, " tokens; at least ", p.every,
                " are needed (training and held-out)");
    if (p.heldout.size() > o.heldout_max) p.heldout.resize(o.heldout_max);
    return p;
}

PretrainResult pretrain(const PretrainOptions& o) {
    const auto wall_start = Clock::now();
    const Dtype out_dtype = check_pretrain_options(o);
    const fs::path out = check_output_folder(o.out, o.overwrite);
    const ModelSpec spec = read_model_spec(o);
    const CorpusBlocks data = read_corpus_blocks(o, spec);

    // ---- model, optimizer, resumable state
    torch::manual_seed(o.seed);
    EncoderModel model(spec.config);
    init_weights(model, spec.hf.initializer_range, o.seed);
    model->to(torch::Device(o.device));
    auto optimizer = make_adamw(model, o.lr, o.weight_decay);
    const RunIdentity id = identify_pretrain(o, data, spec.hf);
    fs::path partial = out;
    partial += ".partial";
    StateStore store(partial, id.signature);
    if (o.overwrite && store.foreign()) store.remove();
    MlmLoop loop(o, model, *optimizer, data, spec, store, out);
    const bool resumed = loop.resume();
    std::int64_t params = 0;
    for (const auto& p : model->parameters())
        params += p.numel();
    if (o.log)
        o.log(str("pretraining ", spec.config.architecture_name(), " (", spec.config.num_layers, " layers, hidden ",
                  spec.config.hidden_size, ", ", params, " parameters) for ", o.max_steps, " steps of ", o.batch_size,
                  " x ", o.max_length, " tokens"));

    // ---- the loop, then the output, atomically
    loop.run(resumed);
    PretrainResult result;
    result.heldout = loop.heldout();
    result.steps = loop.step();
    result.tokens_seen = loop.tokens_seen();
    result.resumed = resumed;
    result.seconds = loop.seconds();
    result.tokens_per_second = double(result.tokens_seen) / std::max(1e-9, result.seconds);
    result.run_record = {{"basin_version", kVersion},
                         {"torch_version", TORCH_VERSION},
                         {"command", o.command_line},
                         {"task", "masked-lm pretraining"},
                         {"options", id.options},
                         {"inputs", id.inputs},
                         {"parameters", params},
                         {"steps", result.steps},
                         {"tokens_seen", result.tokens_seen},
                         {"heldout", heldout_json(result.heldout)},
                         {"final_heldout_loss", result.heldout.back().loss},
                         {"final_heldout_accuracy", result.heldout.back().accuracy},
                         {"train_seconds", result.seconds},
                         {"tokens_per_second", result.tokens_per_second},
                         {"wall_seconds", std::chrono::duration<double>(Clock::now() - wall_start).count()},
                         {"resumed", resumed}};
    write_folder_atomically(out, [&](const fs::path& tmp) {
        save_model(model, config_for(spec.config, spec.hf), tmp, out_dtype, {{"basin_run", "pretrain"}});
        fs::copy_file(o.tokenizer, tmp / "tokenizer.json");
        write_text_atomically(tmp / "basin_run.json", result.run_record.dump(2) + "\n");
    });
    store.remove();
    return result;
}

} // namespace basin
