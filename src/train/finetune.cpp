#include "basin/train/finetune.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/core/strings.h"
#include "basin/core/version.h"
#include "basin/data/batching.h"
#include "basin/eval/evaluate.h"
#include "basin/io/checkpoint.h"
#include "basin/models/load.h"
#include "state.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <torch/version.h>
#include <unistd.h>

namespace basin {

TrainMode parse_train_mode(const std::string& name) {
    if (name == "full") return TrainMode::Full;
    if (name == "bitfit") return TrainMode::BitFit;
    if (name == "head") return TrainMode::Head;
    fail("--mode: expected full, bitfit or head, got '", name, "'");
}

const char* train_mode_name(TrainMode mode) {
    switch (mode) {
    case TrainMode::Full:
        return "full";
    case TrainMode::BitFit:
        return "bitfit";
    case TrainMode::Head:
        return "head";
    }
    return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
using namespace train_detail;

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items)
        out += (out.empty() ? "" : ", ") + s;
    return out;
}

struct TrainState {
    std::int64_t step = 0;
    int epoch = 0;              // epoch in progress
    std::size_t next_micro = 0; // first micro-batch of that epoch not yet done
    double loss_sum = 0;        // training loss summed over the epoch so far
    std::size_t loss_count = 0;
    std::size_t examples_seen = 0, tokens_seen = 0;
    double elapsed = 0;
    bool epoch_end_pending = false; // stopped after the epoch's last step, before its evaluation
    std::vector<EpochMetrics> epochs;
};

nlohmann::json to_json(const EpochMetrics& m) {
    nlohmann::json j = {{"epoch", m.epoch}, {"step", m.step}, {"train_loss", m.train_loss}};
    if (m.eval_accuracy) {
        j["eval_accuracy"] = *m.eval_accuracy;
        j["eval_macro_f1"] = *m.eval_macro_f1;
        j["eval_loss"] = *m.eval_loss;
    }
    return j;
}

EpochMetrics epoch_from_json(const nlohmann::json& j) {
    EpochMetrics m;
    m.epoch = j.at("epoch");
    m.step = j.at("step");
    m.train_loss = j.at("train_loss");
    if (j.contains("eval_accuracy")) {
        m.eval_accuracy = j["eval_accuracy"].get<double>();
        m.eval_macro_f1 = j["eval_macro_f1"].get<double>();
        m.eval_loss = j["eval_loss"].get<double>();
    }
    return m;
}

nlohmann::json to_json(const TrainState& s) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& m : s.epochs)
        epochs.push_back(to_json(m));
    return {{"step", s.step},
            {"epoch", s.epoch},
            {"next_micro", s.next_micro},
            {"loss_sum", s.loss_sum},
            {"loss_count", s.loss_count},
            {"examples_seen", s.examples_seen},
            {"tokens_seen", s.tokens_seen},
            {"elapsed", s.elapsed},
            {"epoch_end_pending", s.epoch_end_pending},
            {"epochs", epochs}};
}

TrainState state_from_json(const nlohmann::json& j) {
    TrainState s;
    s.step = j.at("step");
    s.epoch = j.at("epoch");
    s.next_micro = j.at("next_micro");
    s.epoch_end_pending = j.value("epoch_end_pending", false);
    s.loss_sum = j.at("loss_sum");
    s.loss_count = j.at("loss_count");
    s.examples_seen = j.at("examples_seen");
    s.tokens_seen = j.at("tokens_seen");
    s.elapsed = j.at("elapsed");
    for (const auto& e : j.at("epochs"))
        s.epochs.push_back(epoch_from_json(e));
    return s;
}

} // namespace

namespace {

void check_finetune_options(const FinetuneOptions& o) {
    BASIN_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr: the learning rate must be positive, got ", o.lr);
    BASIN_CHECK(o.batch_size > 0, "--batch-size must be positive");
    BASIN_CHECK(o.grad_accum >= 1, "--grad-accum must be at least 1, got ", o.grad_accum);
    BASIN_CHECK(o.epochs >= 1 || o.max_steps > 0, "--epochs must be at least 1 (or give --max-steps)");
    BASIN_CHECK(o.warmup_ratio >= 0 && o.warmup_ratio < 1, "--warmup-ratio must be in [0, 1), got ", o.warmup_ratio);
    BASIN_CHECK(o.weight_decay >= 0, "--weight-decay must not be negative");
    BASIN_CHECK(o.max_grad_norm >= 0, "--max-grad-norm must not be negative");
    BASIN_CHECK(!o.dropout || (*o.dropout >= 0 && *o.dropout < 1), "--dropout must be in [0, 1)");
}

// The training data (a seeded sample with train_limit), the evaluation data, and the labels: the
// two files must have the same label set.
struct TrainingData {
    Dataset train;
    std::optional<Dataset> eval;
    std::vector<std::string> labels;
};

TrainingData read_training_data(const FinetuneOptions& o) {
    Dataset train = read_dataset(o.train);
    std::optional<Dataset> eval;
    if (!o.eval.empty()) eval = read_dataset(o.eval);
    std::vector<std::string> labels = train.label_names();
    if (eval) {
        auto eval_labels = eval->label_names();
        std::set<std::string> a(labels.begin(), labels.end()), b(eval_labels.begin(), eval_labels.end());
        std::vector<std::string> only_train, only_eval;
        for (const auto& l : a)
            if (!b.count(l)) only_train.push_back(l);
        for (const auto& l : b)
            if (!a.count(l)) only_eval.push_back(l);
        BASIN_CHECK(only_train.empty() && only_eval.empty(), "labels of ", o.train.string(), " and ", o.eval.string(),
                    " differ:", only_train.empty() ? "" : " only in the training data: " + join(only_train) + ";",
                    only_eval.empty() ? "" : " only in the evaluation data: " + join(only_eval));
    }
    if (o.train_limit > 0) {
        BASIN_CHECK(o.train_limit <= train.examples.size(), "--train-limit ", o.train_limit,
                    " is larger than the training data (", train.examples.size(), " examples in ", o.train.string(),
                    ")");
        auto order = permutation(train.examples.size(), mix_seed(o.seed, -1));
        order.resize(o.train_limit);
        std::sort(order.begin(), order.end());
        std::vector<Example> kept;
        for (auto i : order)
            kept.push_back(train.examples[i]);
        train.examples.swap(kept);
        labels = train.label_names();
    }
    BASIN_CHECK(labels.size() >= 2, o.train.string(), ": training data needs at least 2 labels, found ", labels.size());
    return {std::move(train), std::move(eval), std::move(labels)};
}

// Which parameters train (full: all; BitFit: biases and the head; head: the head only); returns
// (trained, total) parameter counts.
std::pair<std::int64_t, std::int64_t> set_trainable(EncoderModel& model, TrainMode mode) {
    std::int64_t trainable = 0, total_params = 0;
    for (auto& item : model->named_parameters()) {
        const std::string& name = item.key();
        const bool head = model->is_head_parameter(name);
        const bool train_it = mode == TrainMode::Full || head || (mode == TrainMode::BitFit && ends_with(name, "bias"));
        item.value().set_requires_grad(train_it);
        total_params += item.value().numel();
        if (train_it) trainable += item.value().numel();
    }
    return {trainable, total_params};
}

} // namespace

StepPlan plan_steps(std::size_t examples, const FinetuneOptions& o) {
    StepPlan p;
    p.micro_batches_per_epoch = (examples + o.batch_size - 1) / o.batch_size;
    p.steps_per_epoch = (p.micro_batches_per_epoch + std::size_t(o.grad_accum) - 1) / std::size_t(o.grad_accum);
    p.total_steps = o.max_steps > 0 ? o.max_steps : std::int64_t(p.steps_per_epoch) * o.epochs;
    p.epochs = int((p.total_steps + std::int64_t(p.steps_per_epoch) - 1) / std::int64_t(p.steps_per_epoch));
    p.warmup_steps = std::int64_t(std::ceil(double(p.total_steps) * o.warmup_ratio));
    return p;
}

FinetuneResult finetune(const FinetuneOptions& o) {
    const auto start_time = Clock::now();
    auto log = [&](const std::string& line) {
        if (o.log) o.log(line);
    };
    check_finetune_options(o); // before touching anything
    const fs::path out = check_output_folder(o.out, o.overwrite, o.model);
    // a sentence-transformers folder is read through its Transformer module (the body)
    const fs::path model_dir = model_folder(fs::absolute(o.model).lexically_normal());

    // ---- data and labels
    TrainingData data = read_training_data(o);
    Dataset& train = data.train;
    const std::optional<Dataset>& eval = data.eval;
    std::vector<std::string>& labels = data.labels;

    // ---- the start model, validated completely, and the model to train
    torch::manual_seed(o.seed);
    LoadOptions load;
    load.device = torch::Device(o.device);
    LoadedModel base = load_model(model_dir, load);
    EncoderConfig config = base.config;
    const std::set<std::string> base_labels(base.config.labels.begin(), base.config.labels.end());
    const bool keep_head = base.config.head == HeadKind::SequenceClassification &&
                           base_labels == std::set<std::string>(labels.begin(), labels.end());
    config.head = HeadKind::SequenceClassification;
    config.pooler = default_pooler(config.family, config.head);
    if (keep_head) labels = base.config.labels; // keep the checkpoint's label order
    config.labels = labels;
    if (o.dropout) config.hidden_dropout = config.attention_dropout = config.classifier_dropout = *o.dropout;
    EncoderModel model(config);
    init_weights(model, base.hf.initializer_range, o.seed); // the seed sets the new head
    {
        torch::NoGradGuard no_grad;
        auto from = base.model->named_parameters();
        for (auto& item : model->named_parameters()) {
            const bool head = model->is_head_parameter(item.key());
            if (head && !keep_head) continue;
            if (auto* p = from.find(item.key())) item.value().copy_(*p);
        }
    }
    model->to(load.device);
    base.model = EncoderModel(nullptr); // release the copy
    auto tokenizer = text::Tokenizer::from_file(model_dir / "tokenizer.json");
    const std::size_t model_max = std::size_t(config.max_positions - config.position_offset());
    const std::size_t max_length = std::min(o.max_length ? o.max_length : model_max, model_max);

    // ---- which parameters train
    const auto counts = set_trainable(model, o.mode);
    const std::int64_t trainable = counts.first, total_params = counts.second;
    auto optimizer_ptr = make_adamw(model, o.lr, o.weight_decay);
    auto& optimizer = *optimizer_ptr;

    // ---- steps
    auto tokenized = tokenize_examples(train, tokenizer, max_length, o.threads);
    const auto targets_all = map_labels(train, config.labels);
    const std::size_t n = train.examples.size();
    const StepPlan steps = plan_steps(n, o);
    const std::size_t micro_per_epoch = steps.micro_batches_per_epoch;
    const std::int64_t total_steps = steps.total_steps;
    const int epochs = steps.epochs;
    const std::int64_t warmup = steps.warmup_steps;

    // ---- resumable state: the signature covers everything that changes the result
    nlohmann::json options_json = {{"mode", train_mode_name(o.mode)},
                                   {"seed", o.seed},
                                   {"epochs", o.epochs},
                                   {"max_steps", o.max_steps},
                                   {"lr", o.lr},
                                   {"batch_size", o.batch_size},
                                   {"grad_accum", o.grad_accum},
                                   {"warmup_ratio", o.warmup_ratio},
                                   {"weight_decay", o.weight_decay},
                                   {"max_grad_norm", o.max_grad_norm},
                                   {"max_length", max_length},
                                   {"dropout", o.dropout ? nlohmann::json(*o.dropout) : nlohmann::json(nullptr)},
                                   {"train_limit", o.train_limit},
                                   {"device", o.device},
                                   {"threads", o.threads}};
    nlohmann::json inputs_json = {
        {"model",
         {{"path", model_dir.string()},
          {"config_sha256", sha256_file(model_dir / "config.json")},
          {"weights_sha256", checkpoint_weights_sha256(model_dir)}}},
        {"train", {{"path", fs::absolute(o.train).string()}, {"sha256", sha256_file(o.train)}, {"examples", n}}}};
    if (eval)
        inputs_json["eval"] = {{"path", fs::absolute(o.eval).string()},
                               {"sha256", sha256_file(o.eval)},
                               {"examples", eval->examples.size()}};
    const std::string signature = sha256_hex((options_json.dump() + inputs_json.dump()).data(),
                                             (options_json.dump() + inputs_json.dump()).size());
    fs::path partial = out;
    partial += ".partial";
    StateStore store(partial, signature);
    // --overwrite discards a partial state of another run; one of this run is still resumed
    if (o.overwrite && store.foreign()) store.remove();
    TrainState state;
    bool resumed = false;
    if (store.exists()) {
        state = state_from_json(store.load(model, optimizer));
        resumed = true;
        log(str("resuming from ", partial.string(), " at step ", state.step, " of ", total_steps));
    }

    log(str("fine-tuning ", model_dir.string(), " (", config.architecture_name(), ", ", train_mode_name(o.mode), ", ",
            trainable, " of ", total_params, " parameters train", keep_head ? "" : ", new head", ") on ", n,
            " examples: ", epochs, " epoch(s), ", total_steps, " steps"));

    // ---- the loop
    const torch::Device device = load.device;
    const std::int32_t pad_id = std::int32_t(config.pad_token_id);
    auto last_log = Clock::now();
    auto run_start = Clock::now();
    const double elapsed_before = state.elapsed;
    // a clean stop (SIGINT/SIGTERM): keep the work so far for the same command to resume
    auto stop_cleanly = [&]() {
        state.elapsed = elapsed_before + std::chrono::duration<double>(Clock::now() - run_start).count();
        store.save(model, optimizer, to_json(state));
        throw Interrupted(interrupt_signal(),
                          str("interrupted by ", signal_name(interrupt_signal()), " at step ", state.step, " of ",
                              total_steps, "; state saved in ", partial.string(), ": the same command resumes"));
    };
    model->train();
    while ((state.step < total_steps || state.epoch_end_pending) && state.epoch < epochs) {
        auto order = permutation(n, mix_seed(o.seed, state.epoch));
        std::size_t micro = state.next_micro;
        while (micro < micro_per_epoch && state.step < total_steps) {
            const std::size_t group = std::min<std::size_t>(std::size_t(o.grad_accum), micro_per_epoch - micro);
            optimizer.zero_grad();
            double step_loss = 0;
            for (std::size_t g = 0; g < group; ++g, ++micro) {
                std::vector<std::size_t> indices(order.begin() + std::ptrdiff_t(micro * o.batch_size),
                                                 order.begin() +
                                                     std::ptrdiff_t(std::min(n, (micro + 1) * o.batch_size)));
                Batch batch = collate(tokenized.encodings, indices, pad_id, device);
                std::vector<std::int64_t> t;
                for (auto i : indices)
                    t.push_back(targets_all[i]);
                auto target = torch::tensor(t, torch::kLong).to(device);
                auto logits = model->classify(batch.input_ids, batch.attention_mask, batch.type_ids);
                auto loss = torch::nn::functional::cross_entropy(logits, target);
                const double value = loss.item<double>();
                BASIN_CHECK(std::isfinite(value), "fine-tuning stopped at step ", state.step + 1, " (epoch ",
                            state.epoch + 1, "): the training loss is ", value,
                            "; lower --lr or check the data. Nothing was written to ", out.string());
                (loss / double(group)).backward();
                step_loss += value / double(group);
                state.examples_seen += indices.size();
                for (auto i : indices)
                    state.tokens_seen += tokenized.encodings[i].size();
            }
            clip_gradients(optimizer, o.max_grad_norm);
            const double factor = lr_factor(state.step, warmup, total_steps);
            set_lr(optimizer, o.lr * factor);
            optimizer.step();
            ++state.step;
            state.loss_sum += step_loss;
            ++state.loss_count;
            state.next_micro = micro;
            if (Clock::now() - last_log > std::chrono::seconds(10) || state.step == total_steps) {
                const double secs = std::chrono::duration<double>(Clock::now() - run_start).count();
                log(str("epoch ", state.epoch + 1, "/", epochs, " step ", state.step, "/", total_steps, " loss ",
                        state.loss_sum / double(std::max<std::size_t>(1, state.loss_count)), " lr ", o.lr * factor,
                        " (", int(double(state.examples_seen) / std::max(1e-9, secs + elapsed_before)),
                        " examples/s)"));
                last_log = Clock::now();
            }
            const bool epoch_done = micro >= micro_per_epoch;
            if (o.save_every > 0 && state.step % o.save_every == 0 && state.step < total_steps && !epoch_done) {
                state.elapsed = elapsed_before + std::chrono::duration<double>(Clock::now() - run_start).count();
                store.save(model, optimizer, to_json(state));
            }
            if (o.stop_after_step >= 0 && state.step == o.stop_after_step) std::_Exit(137); // simulated kill
            if (interrupted()) stop_cleanly();
        }
        // end of epoch (or of the step budget)
        EpochMetrics m;
        m.epoch = state.epoch + 1;
        m.step = state.step;
        m.train_loss = state.loss_sum / double(std::max<std::size_t>(1, state.loss_count));
        if (eval) {
            EvalOptions eo;
            eo.max_length = max_length;
            eo.threads = o.threads;
            EvalResult r;
            try {
                r = evaluate(model, tokenizer, *eval, eo);
            } catch (const Interrupted&) { // the epoch's steps are done: a resumed run evaluates again
                state.epoch_end_pending = true;
                stop_cleanly();
            }
            m.eval_accuracy = r.accuracy;
            m.eval_macro_f1 = r.macro_f1;
            m.eval_loss = r.mean_loss;
            model->train();
            log(str("epoch ", m.epoch, ": train loss ", m.train_loss, ", eval accuracy ", r.accuracy, ", macro-F1 ",
                    r.macro_f1, ", loss ", r.mean_loss));
        } else {
            log(str("epoch ", m.epoch, ": train loss ", m.train_loss));
        }
        state.epochs.push_back(m);
        state.epoch_end_pending = false;
        ++state.epoch;
        state.next_micro = 0;
        state.loss_sum = 0;
        state.loss_count = 0;
        if (o.save_every > 0 && state.step < total_steps) {
            state.elapsed = elapsed_before + std::chrono::duration<double>(Clock::now() - run_start).count();
            store.save(model, optimizer, to_json(state));
        }
    }

    // ---- output, atomically: a temporary folder renamed into place
    FinetuneResult result;
    result.epochs = state.epochs;
    result.steps = state.step;
    result.resumed = resumed;
    result.seconds = elapsed_before + std::chrono::duration<double>(Clock::now() - run_start).count();
    result.examples_per_second = double(state.examples_seen) / std::max(1e-9, result.seconds);
    result.tokens_per_second = double(state.tokens_seen) / std::max(1e-9, result.seconds);
    nlohmann::json epochs_json = nlohmann::json::array();
    for (const auto& m : state.epochs)
        epochs_json.push_back(to_json(m));
    result.run_record = {
        {"basin_version", kVersion},
        {"torch_version", TORCH_VERSION},
        {"command", o.command_line},
        {"options", options_json},
        {"inputs", inputs_json},
        {"labels", config.labels},
        {"new_head", !keep_head},
        {"parameters", {{"total", total_params}, {"trained", trainable}}},
        {"steps", state.step},
        {"warmup_steps", warmup},
        {"epochs", epochs_json},
        {"train_seconds", result.seconds},
        {"wall_seconds", std::chrono::duration<double>(Clock::now() - start_time).count()},
        {"examples_per_second", result.examples_per_second},
        {"tokens_per_second", result.tokens_per_second},
        {"resumed", resumed},
        {"data_order_epoch1_head",
         [&] {
             auto order = permutation(n, mix_seed(o.seed, 0));
             order.resize(std::min<std::size_t>(order.size(), 16));
             return order;
         }()},
    };
    write_folder_atomically(out, [&](const fs::path& tmp) {
        HfConfig hf = config_for(config, base.hf);
        save_model(model, hf, tmp, Dtype::F32, {{"basin_run", "finetune"}});
        fs::copy_file(model_dir / "tokenizer.json", tmp / "tokenizer.json");
        for (const char* extra :
             {"tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt"})
            if (fs::exists(model_dir / extra)) fs::copy_file(model_dir / extra, tmp / extra);
        write_text_atomically(tmp / "basin_run.json", result.run_record.dump(2) + "\n");
    });
    store.remove();
    return result;
}

} // namespace basin
