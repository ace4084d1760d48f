#include "program.h"

#include "basin/core/error.h"
#include "basin/core/interrupt.h"
#include "basin/core/version.h"

#include <cstdio>

namespace basin::cli {

const std::vector<Command>& command_table() {
    static const std::vector<Command> table = {
        {"eval", "Evaluate a sequence-classification checkpoint on a labelled dataset", nullptr},
        {"inspect", "Describe a checkpoint folder or a .safetensors file", nullptr},
        {"tokenizer", "Tokenizer tools (train)", nullptr},
        {"tokenize", "Tokenize text with a tokenizer.json (ids as JSONL)", nullptr},
        {"finetune", "Fine-tune a checkpoint (full, BitFit or head) on labelled data", nullptr},
        {"pretrain", "Masked-LM pretraining of an encoder from a text corpus", nullptr},
        {"probe", "Generalized loss: fit a linear head on a frozen body, score it on test data", nullptr},
        {"map", "Weight-space map: similarity, clusters and projections of many checkpoints",
         without_command_line<add_map>},
        {"locate", "Where new checkpoints lie among a map's groups: nearest models, hull distances, predicted group",
         without_command_line<add_locate>},
        {"interpolate", "Generalized loss along the line between two checkpoints (and beyond, --extrapolate)", nullptr},
        {"hull", "Generalized loss of a group's members (In), hull samples (In') and outside models (Ex); PB table",
         nullptr},
        {"plane", "Generalized-loss surface on the plane through three checkpoints", nullptr},
        {"search", "Search a group's region for the lowest generalized loss on a target; compare with merges", nullptr},
        {"merge",
         "Merge checkpoints: mean (centroid), weighted, task-arithmetic, ties, dare, slerp, model-stock, gta, "
         "multislerp, karcher, nuslerp, sce (or a mergekit YAML, --config)",
         without_command_line<add_merge>},
        {"init-compare", "Fine-tune from several starts (pretrained, centroid, ...) with the same seeds and compare",
         nullptr},
        {"run", "Run an experiment spec (TOML): jobs with dependencies, a resumable results store, MPI",
         without_command_line<add_run>},
        {"status", "What an experiment has done, is doing and has left", without_command_line<add_status>},
        {"report", "One self-contained HTML report (and SVG/PDF figures) from an experiment's store",
         without_command_line<add_report>},
        {"init-model", "Create a randomly initialised BERT/RoBERTa checkpoint", nullptr},
    };
    return table;
}

bool is_light_command(const std::string& name) {
    for (const auto& c : command_table())
        if (name == c.name) return c.light != nullptr;
    return false;
}

int run_program(int argc, char** argv, const std::vector<Command>& table, const std::map<std::string, Adder>& torch,
                std::string (*describe)(const std::exception&)) {
    CLI::App app{"basin: study and use the weight space of fine-tuned language models"};
    app.require_subcommand(1);
    // A repeated option takes its last value, so that scripts can append overrides.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.set_version_flag("--version", std::string("basin ") + kVersion);
    std::string command_line; // recorded by the training commands
    for (int i = 0; i < argc; ++i)
        command_line += (i ? " " : "") + std::string(argv[i]);
    std::map<CLI::App*, Runner> runners;
    for (const auto& c : table) {
        Adder add = c.light;
        if (!add) {
            const auto it = torch.find(c.name);
            if (it == torch.end()) continue; // a torch command in the light program: basin-torch runs it
            add = it->second;
        }
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        runners[sub] = add(*sub, command_line);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto* sub : app.get_subcommands())
            return runners.at(sub)();
    } catch (const Interrupted& e) {
        return report_interrupted(e);
    } catch (const std::exception& e) { // basin::Error and anything else: one line
        std::fprintf(stderr, "basin: error: %s\n", describe ? describe(e).c_str() : e.what());
        return 1;
    }
    return 0;
}

} // namespace basin::cli
