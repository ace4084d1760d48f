#include "basin/train/finetune.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/core/strings.h"
#include "basin/core/version.h"
#include "basin/data/batching.h"
#include "basin/eval/evaluate.h"
#include "basin/io/adapter.h"
#include "basin/io/checkpoint.h"
#include "basin/models/load.h"
#include "lora.h"
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
    if (name == "lora") return TrainMode::Lora;
    fail("--mode: expected full, bitfit, head or lora, got '", name, "'");
}

const char* train_mode_name(TrainMode mode) {
    switch (mode) {
    case TrainMode::Full:
        return "full";
    case TrainMode::BitFit:
        return "bitfit";
    case TrainMode::Head:
        return "head";
    case TrainMode::Lora:
        return "lora";
    }
    return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
using namespace train_detail;

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
    if (o.mode == TrainMode::Lora) {
        BASIN_CHECK(o.lora.rank >= 1, "--lora-rank must be at least 1, got ", o.lora.rank);
        BASIN_CHECK(o.lora.alpha > 0 && std::isfinite(o.lora.alpha), "--lora-alpha must be positive, got ",
                    o.lora.alpha);
        BASIN_CHECK(!o.lora.targets.empty(), "--lora-targets: name at least one linear layer (e.g. query,value)");
    }
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
                    " differ:", only_train.empty() ? "" : " only in the training data: " + join(only_train, ", ") + ";",
                    only_eval.empty() ? "" : " only in the evaluation data: " + join(only_eval, ", "));
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

// Which parameters train (full: all; BitFit: biases and the head; head and LoRA: the head only,
// LoRA's factors are added by LoraTrainer); returns (trained, total) parameter counts.
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

// The model to fine-tune: the start checkpoint's body (and its head when its labels are the
// data's), a new seeded head otherwise, on the device.
struct StartModel {
    EncoderModel model{nullptr};
    EncoderConfig config;
    HfConfig hf;
    bool keep_head = false;
    torch::Device device{torch::kCPU};
};

StartModel prepare_model(const FinetuneOptions& o, const fs::path& model_dir, std::vector<std::string>& labels) {
    torch::manual_seed(o.seed);
    LoadOptions load;
    load.device = torch::Device(o.device);
    LoadedModel base = load_model(model_dir, load);
    StartModel start;
    start.device = load.device;
    start.hf = base.hf;
    start.config = base.config;
    EncoderConfig& config = start.config;
    const std::set<std::string> base_labels(base.config.labels.begin(), base.config.labels.end());
    start.keep_head = base.config.head == HeadKind::SequenceClassification &&
                      base_labels == std::set<std::string>(labels.begin(), labels.end());
    config.head = HeadKind::SequenceClassification;
    config.pooler = default_pooler(config.family, config.head);
    if (start.keep_head) labels = base.config.labels; // keep the checkpoint's label order
    config.labels = labels;
    if (o.dropout) config.hidden_dropout = config.attention_dropout = config.classifier_dropout = *o.dropout;
    start.model = EncoderModel(config);
    init_weights(start.model, base.hf.initializer_range, o.seed); // the seed sets the new head
    {
        torch::NoGradGuard no_grad;
        auto from = base.model->named_parameters();
        for (auto& item : start.model->named_parameters()) {
            const bool head = start.model->is_head_parameter(item.key());
            if (head && !start.keep_head) continue;
            if (auto* p = from.find(item.key())) item.value().copy_(*p);
        }
    }
    start.model->to(start.device);
    return start;
}

// The run's options and inputs, and their signature.
RunIdentity identify_finetune(const FinetuneOptions& o, const fs::path& model_dir, std::size_t examples,
                              const std::optional<Dataset>& eval, std::size_t max_length) {
    nlohmann::json options = {{"mode", train_mode_name(o.mode)},
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
    if (o.mode == TrainMode::Lora)
        options["lora"] = {{"rank", o.lora.rank}, {"alpha", o.lora.alpha}, {"targets", o.lora.targets}};
    nlohmann::json inputs = {
        {"model",
         {{"path", model_dir.string()},
          {"config_sha256", sha256_file(model_dir / "config.json")},
          {"weights_sha256", checkpoint_weights_sha256(model_dir)}}},
        {"train",
         {{"path", fs::absolute(o.train).string()}, {"sha256", sha256_file(o.train)}, {"examples", examples}}}};
    if (eval)
        inputs["eval"] = {{"path", fs::absolute(o.eval).string()},
                          {"sha256", sha256_file(o.eval)},
                          {"examples", eval->examples.size()}};
    return identify_run(std::move(options), std::move(inputs));
}

// What the loop evaluates after each epoch (data: none without --eval).
struct EvalInputs {
    const Dataset* data = nullptr;
    const text::Tokenizer& tokenizer;
    std::size_t max_length = 0;
};

// The optimizer steps and the evaluation after each epoch, from a fresh or a resumed state, saving
// the state every save_every steps and after each epoch; a signal saves it and stops cleanly.
class TrainingLoop {
  public:
    TrainingLoop(const FinetuneOptions& o, StartModel& start, torch::optim::Optimizer& optimizer,
                 const TokenizedExamples& tokenized, const std::vector<std::int64_t>& targets, const StepPlan& steps,
                 StateStore& store, TrainState& state, const EvalInputs& eval, const fs::path& out, LoraTrainer* lora)
        : o_(o), model_(start.model), optimizer_(optimizer), tokenized_(tokenized), targets_(targets), steps_(steps),
          store_(store), state_(state), eval_(eval), out_(out), lora_(lora),
          pad_id_(std::int32_t(start.config.pad_token_id)), device_(start.device), elapsed_before_(state.elapsed) {}

    void run() {
        model_->train();
        while ((state_.step < steps_.total_steps || state_.epoch_end_pending) && state_.epoch < steps_.epochs) {
            const auto order = permutation(targets_.size(), mix_seed(o_.seed, state_.epoch));
            std::size_t micro = state_.next_micro;
            while (micro < steps_.micro_batches_per_epoch && state_.step < steps_.total_steps) {
                micro = optimizer_step(order, micro);
                const bool epoch_done = micro >= steps_.micro_batches_per_epoch;
                if (o_.save_every > 0 && state_.step % o_.save_every == 0 && state_.step < steps_.total_steps &&
                    !epoch_done)
                    save();
                if (o_.stop_after_step >= 0 && state_.step == o_.stop_after_step) std::_Exit(137); // simulated kill
                if (interrupted()) stop_cleanly();
            }
            end_epoch(); // (or of the step budget)
        }
    }

    // seconds of training over this run and the runs it resumes
    double seconds() const {
        return elapsed_before_ + std::chrono::duration<double>(Clock::now() - run_start_).count();
    }

  private:
    void log(const std::string& line) const {
        if (o_.log) o_.log(line);
    }
    void save() {
        state_.elapsed = seconds();
        store_.save(model_, optimizer_, to_json(state_));
    }
    // a clean stop (SIGINT/SIGTERM): keep the work so far for the same command to resume
    [[noreturn]] void stop_cleanly() {
        save();
        throw Interrupted(interrupt_signal(), str("interrupted by ", signal_name(interrupt_signal()), " at step ",
                                                  state_.step, " of ", steps_.total_steps, "; state saved in ",
                                                  store_.dir().string(), ": the same command resumes"));
    }

    // One optimizer step over up to grad_accum micro-batches from micro; returns the next micro-batch.
    std::size_t optimizer_step(const std::vector<std::size_t>& order, std::size_t micro) {
        const std::size_t n = targets_.size();
        const std::size_t group =
            std::min<std::size_t>(std::size_t(o_.grad_accum), steps_.micro_batches_per_epoch - micro);
        optimizer_.zero_grad();
        double step_loss = 0;
        for (std::size_t g = 0; g < group; ++g, ++micro) {
            std::vector<std::size_t> indices(order.begin() + std::ptrdiff_t(micro * o_.batch_size),
                                             order.begin() + std::ptrdiff_t(std::min(n, (micro + 1) * o_.batch_size)));
            Batch batch = collate(tokenized_.encodings, indices, pad_id_, device_);
            std::vector<std::int64_t> t;
            for (auto i : indices)
                t.push_back(targets_[i]);
            auto target = torch::tensor(t, torch::kLong).to(device_);
            auto logits = model_->classify(batch.input_ids, batch.attention_mask, batch.type_ids);
            auto loss = torch::nn::functional::cross_entropy(logits, target);
            const double value = loss.item<double>();
            BASIN_CHECK(std::isfinite(value), "fine-tuning stopped at step ", state_.step + 1, " (epoch ",
                        state_.epoch + 1, "): the training loss is ", value,
                        "; lower --lr or check the data. Nothing was written to ", out_.string());
            (loss / double(group)).backward();
            step_loss += value / double(group);
            state_.examples_seen += indices.size();
            for (auto i : indices)
                state_.tokens_seen += tokenized_.encodings[i].size();
        }
        if (lora_) lora_->factor_gradients();
        clip_gradients(optimizer_, o_.max_grad_norm);
        const double factor = lr_factor(state_.step, steps_.warmup_steps, steps_.total_steps);
        set_lr(optimizer_, o_.lr * factor);
        optimizer_.step();
        if (lora_) lora_->merge();
        ++state_.step;
        state_.loss_sum += step_loss;
        ++state_.loss_count;
        state_.next_micro = micro;
        if (Clock::now() - last_log_ > std::chrono::seconds(10) || state_.step == steps_.total_steps) {
            const double secs = std::chrono::duration<double>(Clock::now() - run_start_).count();
            log(str("epoch ", state_.epoch + 1, "/", steps_.epochs, " step ", state_.step, "/", steps_.total_steps,
                    " loss ", state_.loss_sum / double(std::max<std::size_t>(1, state_.loss_count)), " lr ",
                    o_.lr * factor, " (", int(double(state_.examples_seen) / std::max(1e-9, secs + elapsed_before_)),
                    " examples/s)"));
            last_log_ = Clock::now();
        }
        return micro;
    }

    // The epoch's metrics (evaluated when there is evaluation data), then the next epoch's state.
    void end_epoch() {
        EpochMetrics m;
        m.epoch = state_.epoch + 1;
        m.step = state_.step;
        m.train_loss = state_.loss_sum / double(std::max<std::size_t>(1, state_.loss_count));
        if (eval_.data) {
            EvalOptions eo;
            eo.max_length = eval_.max_length;
            eo.threads = o_.threads;
            EvalResult r;
            try {
                r = evaluate(model_, eval_.tokenizer, *eval_.data, eo);
            } catch (const Interrupted&) { // the epoch's steps are done: a resumed run evaluates again
                state_.epoch_end_pending = true;
                stop_cleanly();
            }
            m.eval_accuracy = r.accuracy;
            m.eval_macro_f1 = r.macro_f1;
            m.eval_loss = r.mean_loss;
            model_->train();
            log(str("epoch ", m.epoch, ": train loss ", m.train_loss, ", eval accuracy ", r.accuracy, ", macro-F1 ",
                    r.macro_f1, ", loss ", r.mean_loss));
        } else {
            log(str("epoch ", m.epoch, ": train loss ", m.train_loss));
        }
        state_.epochs.push_back(m);
        state_.epoch_end_pending = false;
        ++state_.epoch;
        state_.next_micro = 0;
        state_.loss_sum = 0;
        state_.loss_count = 0;
        if (o_.save_every > 0 && state_.step < steps_.total_steps) save();
    }

    const FinetuneOptions& o_;
    EncoderModel& model_;
    torch::optim::Optimizer& optimizer_;
    const TokenizedExamples& tokenized_;
    const std::vector<std::int64_t>& targets_;
    const StepPlan& steps_;
    StateStore& store_;
    TrainState& state_;
    const EvalInputs& eval_;
    const fs::path& out_;
    LoraTrainer* lora_; // mode lora: the factors' gradients and W = W0 + s B A after each step
    const std::int32_t pad_id_;
    const torch::Device device_;
    const double elapsed_before_;
    const Clock::time_point run_start_ = Clock::now();
    Clock::time_point last_log_ = Clock::now();
};

// basin_run.json: the run's identity, what it trained and how fast.
nlohmann::json run_record(const FinetuneOptions& o, const RunIdentity& id, const StartModel& start,
                          const FinetuneResult& result, const TrainState& state, std::int64_t trainable,
                          std::int64_t total_params, std::int64_t warmup, std::size_t examples, double wall_seconds) {
    nlohmann::json epochs_json = nlohmann::json::array();
    for (const auto& m : state.epochs)
        epochs_json.push_back(to_json(m));
    auto order = permutation(examples, mix_seed(o.seed, 0));
    order.resize(std::min<std::size_t>(order.size(), 16));
    return {
        {"basin_version", kVersion},
        {"torch_version", TORCH_VERSION},
        {"command", o.command_line},
        {"options", id.options},
        {"inputs", id.inputs},
        {"labels", start.config.labels},
        {"new_head", !start.keep_head},
        {"parameters", {{"total", total_params}, {"trained", trainable}}},
        {"steps", state.step},
        {"warmup_steps", warmup},
        {"epochs", epochs_json},
        {"train_seconds", result.seconds},
        {"wall_seconds", wall_seconds},
        {"examples_per_second", result.examples_per_second},
        {"tokens_per_second", result.tokens_per_second},
        {"resumed", result.resumed},
        {"data_order_epoch1_head", order},
    };
}

// The output, atomically: a temporary folder renamed into place; a checkpoint folder, or with LoRA
// an adapter folder (factors and head) that names the start model as its base.
void write_finetuned(const fs::path& out, const fs::path& model_dir, StartModel& start, const nlohmann::json& record,
                     const LoraTrainer* lora) {
    write_folder_atomically(out, [&](const fs::path& tmp) {
        if (lora)
            lora->write_adapter(tmp, start.model, model_dir);
        else
            save_model(start.model, config_for(start.config, start.hf), tmp, Dtype::F32, {{"basin_run", "finetune"}});
        copy_tokenizer_files(model_dir, tmp); // tokenizer.json was read to tokenize the data
        write_text_atomically(tmp / "basin_run.json", record.dump(2) + "\n");
    });
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
    check_finetune_options(o); // before touching anything
    BASIN_CHECK(!is_adapter_folder(o.model), o.model.string(),
                ": a LoRA adapter folder; fine-tune from its base, or from the checkpoint basin merge makes of it "
                "(basin merge --method mean --models ADAPTER --base BASE --out DIR)");
    const fs::path out = check_output_folder(o.out, o.overwrite, o.model);
    // a sentence-transformers folder is read through its Transformer module (the body)
    const fs::path model_dir = model_folder(fs::absolute(o.model).lexically_normal());

    // ---- data, the start model (validated completely), the trained parameters, the steps
    TrainingData data = read_training_data(o);
    StartModel start = prepare_model(o, model_dir, data.labels);
    auto tokenizer = text::Tokenizer::from_file(model_dir / "tokenizer.json");
    const std::size_t model_max = std::size_t(start.config.max_positions - start.config.position_offset());
    const std::size_t max_length = std::min(o.max_length ? o.max_length : model_max, model_max);
    auto [trainable, total_params] = set_trainable(start.model, o.mode);
    std::optional<LoraTrainer> lora;
    if (o.mode == TrainMode::Lora) {
        lora.emplace(start.model, o.lora, o.seed);
        trainable += lora->factor_parameters();
    }
    auto optimizer =
        make_adamw(start.model, o.lr, o.weight_decay, lora ? lora->target_weights() : std::set<std::string>{});
    const auto tokenized = tokenize_examples(data.train, tokenizer, max_length, o.threads);
    const auto targets = map_labels(data.train, start.config.labels);
    const std::size_t n = data.train.examples.size();
    const StepPlan steps = plan_steps(n, o);

    // ---- resumable state, under the run's signature
    const RunIdentity id = identify_finetune(o, model_dir, n, data.eval, max_length);
    fs::path partial = out;
    partial += ".partial";
    StateStore store(partial, id.signature);
    // --overwrite discards a partial state of another run; one of this run is still resumed
    if (o.overwrite && store.foreign()) store.remove();
    TrainState state;
    FinetuneResult result;
    if (store.exists()) {
        state = state_from_json(store.load(start.model, *optimizer));
        if (lora) lora->merge(); // W from the restored factors (bit for bit what was saved)
        result.resumed = true;
        if (o.log) o.log(str("resuming from ", partial.string(), " at step ", state.step, " of ", steps.total_steps));
    }
    if (o.log)
        o.log(str("fine-tuning ", model_dir.string(), " (", start.config.architecture_name(), ", ",
                  train_mode_name(o.mode), ", ", trainable, " of ", total_params, " parameters train",
                  start.keep_head ? "" : ", new head", ") on ", n, " examples: ", steps.epochs, " epoch(s), ",
                  steps.total_steps, " steps"));

    // ---- the loop, then the output
    const EvalInputs eval{data.eval ? &*data.eval : nullptr, tokenizer, max_length};
    TrainingLoop loop(o, start, *optimizer, tokenized, targets, steps, store, state, eval, out,
                      lora ? &*lora : nullptr);
    loop.run();
    result.epochs = state.epochs;
    result.steps = state.step;
    result.seconds = loop.seconds();
    result.examples_per_second = double(state.examples_seen) / std::max(1e-9, result.seconds);
    result.tokens_per_second = double(state.tokens_seen) / std::max(1e-9, result.seconds);
    result.run_record = run_record(o, id, start, result, state, trainable, total_params, steps.warmup_steps, n,
                                   std::chrono::duration<double>(Clock::now() - start_time).count());
    write_finetuned(out, model_dir, start, result.run_record, lora ? &*lora : nullptr);
    store.remove();
    return result;
}

} // namespace basin
