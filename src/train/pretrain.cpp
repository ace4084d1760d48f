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
    auto log = [&](const std::string& line) {
        if (o.log) o.log(line);
    };
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
    const fs::path out = check_output_folder(o.out, o.overwrite);

    // ---- tokenizer and config must agree
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
    const std::int32_t cls = special_id(
        tokenizer, bert ? std::initializer_list<const char*>{"[CLS]"} : std::initializer_list<const char*>{"<s>"},
        "start");
    const std::int32_t sep = special_id(
        tokenizer, bert ? std::initializer_list<const char*>{"[SEP]"} : std::initializer_list<const char*>{"</s>"},
        "separator");
    const std::int32_t mask_id = special_id(
        tokenizer, bert ? std::initializer_list<const char*>{"[MASK]"} : std::initializer_list<const char*>{"<mask>"},
        "mask");

    // ---- corpus -> blocks of max_length tokens: <s> + chunk + </s>
    auto t0 = Clock::now();
    Corpus corpus = read_corpus(o.corpus, [&](const std::string& w) { log("warning: " + w); });
    auto stream = tokenize_corpus(corpus, tokenizer, sep, o.threads);
    const PretrainBlocks split = plan_pretrain_blocks(stream.size(), o);
    const std::size_t chunk = split.chunk;
    const std::vector<std::size_t>& train_blocks = split.train;
    const std::vector<std::size_t>& heldout_blocks = split.heldout;
    auto sequence = [&](std::size_t block) {
        std::vector<std::int32_t> s;
        s.reserve(o.max_length);
        s.push_back(cls);
        s.insert(s.end(), stream.begin() + std::ptrdiff_t(block * chunk),
                 stream.begin() + std::ptrdiff_t((block + 1) * chunk));
        s.push_back(sep);
        return s;
    };
    log(str("corpus: ", corpus.files.size(), " files (", corpus.skipped, " skipped), ", corpus.bytes, " bytes, ",
            stream.size(), " tokens -> ", train_blocks.size(), " training and ", heldout_blocks.size(),
            " held-out sequences of ", o.max_length, " tokens (",
            std::chrono::duration<double>(Clock::now() - t0).count(), " s)"));

    // ---- model, optimizer, schedule, resumable state
    torch::manual_seed(o.seed);
    const torch::Device device(o.device);
    EncoderModel model(config);
    init_weights(model, hf.initializer_range, o.seed);
    model->to(device);
    auto optimizer_ptr = make_adamw(model, o.lr, o.weight_decay);
    auto& optimizer = *optimizer_ptr;
    const std::int64_t warmup = std::int64_t(std::ceil(double(o.max_steps) * o.warmup_ratio));

    nlohmann::json options_json = {{"seed", o.seed},
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
    for (const auto& f : corpus.files) {
        const std::string name = f.path.filename().string();
        corpus_hash.update(name.data(), name.size());
        corpus_hash.update(f.text.data(), f.text.size());
    }
    nlohmann::json inputs_json = {
        {"corpus",
         {{"path", fs::absolute(o.corpus).string()},
          {"files", corpus.files.size()},
          {"skipped_files", corpus.skipped},
          {"bytes", corpus.bytes},
          {"tokens", stream.size()},
          {"sha256", corpus_hash.hex_digest()}}},
        {"tokenizer", {{"path", fs::absolute(o.tokenizer).string()}, {"sha256", sha256_file(o.tokenizer)}}},
        {"config", hf.to_json()}};
    const std::string signed_text = options_json.dump() + inputs_json.dump();
    fs::path partial = out;
    partial += ".partial";
    StateStore store(partial, sha256_hex(signed_text.data(), signed_text.size()));
    if (o.overwrite && store.foreign()) store.remove();

    std::int64_t step = 0, tokens_seen = 0;
    double elapsed_before = 0, loss_sum = 0;
    std::int64_t loss_count = 0;
    std::vector<HeldoutMetrics> heldout;
    bool resumed = false;
    if (store.exists()) {
        auto c = store.load(model, optimizer);
        step = c.at("step");
        tokens_seen = c.at("tokens_seen");
        elapsed_before = c.at("elapsed");
        for (const auto& h : c.at("heldout"))
            heldout.push_back({h.at("step"), h.at("loss"), h.at("accuracy"), h.at("tokens_seen")});
        resumed = true;
        log(str("resuming from ", partial.string(), " at step ", step, " of ", o.max_steps));
    }
    std::int64_t params = 0;
    for (const auto& p : model->parameters())
        params += p.numel();
    log(str("pretraining ", config.architecture_name(), " (", config.num_layers, " layers, hidden ", config.hidden_size,
            ", ", params, " parameters) for ", o.max_steps, " steps of ", o.batch_size, " x ", o.max_length,
            " tokens"));

    auto evaluate_heldout = [&]() {
        model->eval();
        torch::NoGradGuard no_grad;
        double loss = 0, correct = 0, count = 0;
        for (std::size_t i = 0; i < heldout_blocks.size(); i += o.batch_size) {
            std::vector<std::vector<std::int32_t>> seqs;
            for (std::size_t k = i; k < std::min(heldout_blocks.size(), i + o.batch_size); ++k)
                seqs.push_back(sequence(heldout_blocks[k]));
            auto m =
                mask_batch(seqs, mix_seed(o.seed, -1000 - std::int64_t(i)), o.mask_prob, mask_id, config.vocab_size);
            auto ids = m.input_ids.to(device);
            auto logits = model->mlm_logits_at(ids, torch::ones_like(ids), m.selected.to(device)).to(torch::kCPU);
            loss += torch::nn::functional::cross_entropy(
                        logits, m.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                        .item<double>();
            correct += logits.argmax(1).eq(m.labels).sum().item<double>();
            count += double(m.labels.size(0));
        }
        model->train();
        return std::make_pair(loss / count, correct / count);
    };
    auto counters = [&](double elapsed) {
        nlohmann::json h = nlohmann::json::array();
        for (const auto& m : heldout)
            h.push_back({{"step", m.step}, {"loss", m.loss}, {"accuracy", m.accuracy}, {"tokens_seen", m.tokens_seen}});
        return nlohmann::json{{"step", step}, {"tokens_seen", tokens_seen}, {"elapsed", elapsed}, {"heldout", h}};
    };

    if (!resumed) { // the starting point, so that the record shows what pretraining gained
        auto [l, a] = evaluate_heldout();
        heldout.push_back({0, l, a, 0});
        log(str("step 0: held-out MLM loss ", l, ", accuracy ", a));
    }
    // ---- the loop
    model->train();
    const auto run_start = Clock::now();
    auto last_log = Clock::now();
    const std::size_t per_epoch = train_blocks.size() / o.batch_size > 0 ? train_blocks.size() / o.batch_size : 1;
    while (step < o.max_steps) {
        const auto epoch = std::int64_t(std::size_t(step) / per_epoch);
        const std::size_t in_epoch = std::size_t(step) % per_epoch;
        const auto order = permutation(train_blocks.size(), mix_seed(o.seed, epoch));
        std::vector<std::vector<std::int32_t>> seqs;
        for (std::size_t k = 0; k < o.batch_size; ++k)
            seqs.push_back(sequence(train_blocks[order[(in_epoch * o.batch_size + k) % order.size()]]));
        auto m = mask_batch(seqs, mix_seed(o.seed, 1'000'000 + step), o.mask_prob, mask_id, config.vocab_size);
        auto ids = m.input_ids.to(device);
        optimizer.zero_grad();
        auto logits = model->mlm_logits_at(ids, torch::ones_like(ids), m.selected.to(device));
        auto loss = torch::nn::functional::cross_entropy(logits, m.labels.to(device));
        const double value = loss.item<double>();
        BASIN_CHECK(std::isfinite(value), "pretraining stopped at step ", step + 1, ": the loss is ", value,
                    "; lower --lr. Nothing was written to ", out.string());
        loss.backward();
        clip_gradients(optimizer, o.max_grad_norm);
        set_lr(optimizer, o.lr * lr_factor(step, warmup, o.max_steps));
        optimizer.step();
        ++step;
        tokens_seen += std::int64_t(o.batch_size * o.max_length);
        loss_sum += value;
        ++loss_count;
        const double secs = std::chrono::duration<double>(Clock::now() - run_start).count();
        if (o.eval_every > 0 && step % o.eval_every == 0 && step < o.max_steps) {
            auto [l, a] = evaluate_heldout();
            heldout.push_back({step, l, a, tokens_seen});
            log(str("step ", step, ": held-out MLM loss ", l, ", accuracy ", a));
        }
        if (Clock::now() - last_log > std::chrono::seconds(15) || step == o.max_steps) {
            const double rate = double(tokens_seen) / std::max(1e-9, secs + elapsed_before);
            log(str("step ", step, "/", o.max_steps, " loss ", loss_sum / double(loss_count), " lr ",
                    o.lr * lr_factor(step, warmup, o.max_steps), " ", int(rate), " tokens/s, ",
                    int(double(o.max_steps - step) * double(o.batch_size * o.max_length) / std::max(1.0, rate)),
                    " s left"));
            loss_sum = 0;
            loss_count = 0;
            last_log = Clock::now();
        }
        if (o.save_every > 0 && step % o.save_every == 0 && step < o.max_steps)
            store.save(model, optimizer, counters(elapsed_before + secs));
        if (o.stop_after_step >= 0 && step == o.stop_after_step) std::_Exit(137); // simulated kill
        if (interrupted()) { // a clean stop: keep the work so far for the same command to resume
            store.save(model, optimizer, counters(elapsed_before + secs));
            throw Interrupted(interrupt_signal(), str("interrupted by ", signal_name(interrupt_signal()), " at step ",
                                                      step, " of ", o.max_steps, "; the same command resumes"));
        }
    }
    auto [final_loss, final_accuracy] = evaluate_heldout();
    heldout.push_back({step, final_loss, final_accuracy, tokens_seen});
    log(str("final held-out MLM loss ", final_loss, ", accuracy ", final_accuracy));

    PretrainResult result;
    result.heldout = heldout;
    result.steps = step;
    result.tokens_seen = tokens_seen;
    result.resumed = resumed;
    result.seconds = elapsed_before + std::chrono::duration<double>(Clock::now() - run_start).count();
    result.tokens_per_second = double(tokens_seen) / std::max(1e-9, result.seconds);
    nlohmann::json history = nlohmann::json::array();
    for (const auto& h : heldout)
        history.push_back(
            {{"step", h.step}, {"loss", h.loss}, {"accuracy", h.accuracy}, {"tokens_seen", h.tokens_seen}});
    result.run_record = {{"basin_version", kVersion},
                         {"torch_version", TORCH_VERSION},
                         {"command", o.command_line},
                         {"task", "masked-lm pretraining"},
                         {"options", options_json},
                         {"inputs", inputs_json},
                         {"parameters", params},
                         {"steps", step},
                         {"tokens_seen", tokens_seen},
                         {"heldout", history},
                         {"final_heldout_loss", final_loss},
                         {"final_heldout_accuracy", final_accuracy},
                         {"train_seconds", result.seconds},
                         {"tokens_per_second", result.tokens_per_second},
                         {"wall_seconds", std::chrono::duration<double>(Clock::now() - wall_start).count()},
                         {"resumed", resumed}};
    write_folder_atomically(out, [&](const fs::path& tmp) {
        save_model(model, config_for(config, hf), tmp, out_dtype, {{"basin_run", "pretrain"}});
        fs::copy_file(o.tokenizer, tmp / "tokenizer.json");
        write_text_atomically(tmp / "basin_run.json", result.run_record.dump(2) + "\n");
    });
    store.remove();
    return result;
}

} // namespace basin
