#include "basin/data/batching.h"
#include "basin/data/dataset.h"
#include "test_util.h"

using namespace basin;
using basin::testing::TempDir;
using basin::testing::write_bytes;

TEST(Dataset, ReadsJsonlWithPairsAndIntegerLabels) {
    TempDir dir;
    write_bytes(
        dir / "d.jsonl",
        "{\"text\":\"a\",\"text_pair\":\"b\",\"label\":1}\n\n{\"text\":\"c\",\"text_pair\":\"d\",\"label\":0}\n");
    auto data = read_dataset(dir / "d.jsonl");
    ASSERT_EQ(data.examples.size(), 2u);
    EXPECT_TRUE(data.has_pair);
    EXPECT_EQ(*data.examples[1].text_pair, "d");
    EXPECT_EQ(data.examples[1].line, 3u);
    EXPECT_EQ(data.label_names(), (std::vector<std::string>{"0", "1"}));
}

TEST(Dataset, LabelOrderIsNumericForNumbersAndSortedOtherwise) {
    TempDir dir;
    write_bytes(dir / "n.jsonl",
                "{\"text\":\"a\",\"label\":10}\n{\"text\":\"b\",\"label\":9}\n{\"text\":\"c\",\"label\":2}\n");
    EXPECT_EQ(read_dataset(dir / "n.jsonl").label_names(), (std::vector<std::string>{"2", "9", "10"}));
    write_bytes(dir / "s.jsonl", "{\"text\":\"a\",\"label\":\"pos\"}\n{\"text\":\"b\",\"label\":\"neg\"}\n");
    EXPECT_EQ(read_dataset(dir / "s.jsonl").label_names(), (std::vector<std::string>{"neg", "pos"}));
}

TEST(Dataset, ReadsQuotedCsvWithColumnMapping) {
    TempDir dir;
    write_bytes(dir / "d.csv", "id,sentence,gold\n1,\"hello, \"\"world\"\"\",pos\n2,\"two\nlines\",neg\n");
    ReadOptions options;
    options.columns.text = "sentence";
    options.columns.label = "gold";
    auto data = read_dataset(dir / "d.csv", options);
    ASSERT_EQ(data.examples.size(), 2u);
    EXPECT_EQ(data.examples[0].text, "hello, \"world\"");
    EXPECT_EQ(data.examples[1].text, "two\nlines");
    EXPECT_FALSE(data.has_pair);
}

TEST(Dataset, ReadsGlueStyleTsvWithAndWithoutHeader) {
    TempDir dir;
    write_bytes(dir / "sst.tsv", "sentence\tlabel\nit 's \"great\"\t1\nbad\t0\n");
    auto data = read_dataset(dir / "sst.tsv", {DataFormat::Auto, {"sentence", "none", "label"}});
    ASSERT_EQ(data.examples.size(), 2u);
    EXPECT_EQ(data.examples[0].text, "it 's \"great\""); // GLUE TSVs are not quoted
    write_bytes(dir / "cola.tsv", "gj04\t1\t\tthe sailors rode the breeze .\ngj04\t0\t*\tthe more .\n");
    ReadOptions cola;
    cola.header = false;
    cola.columns = {"3", "none", "1"};
    data = read_dataset(dir / "cola.tsv", cola);
    EXPECT_EQ(data.examples[1].text, "the more .");
    EXPECT_EQ(data.examples[1].label, "0");
}

TEST(Dataset, MalformedLineIsReportedWithItsNumber) {
    TempDir dir;
    write_bytes(dir / "bad.jsonl", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\": oops}\n");
    EXPECT_ERROR_CONTAINS(read_dataset(dir / "bad.jsonl"), "bad.jsonl:2", "malformed JSON");
    write_bytes(dir / "missing.jsonl", "{\"text\":\"a\"}\n");
    EXPECT_ERROR_CONTAINS(read_dataset(dir / "missing.jsonl"), "missing.jsonl:1", "missing field 'label'");
    write_bytes(dir / "short.tsv", "text\tlabel\nonly-one-field\n");
    EXPECT_ERROR_CONTAINS(read_dataset(dir / "short.tsv"), "short.tsv:2", "expected at least 2 fields");
}

TEST(Dataset, InvalidUtf8AndEmptyFilesAreErrors) {
    TempDir dir;
    write_bytes(dir / "u.tsv", "text\tlabel\nok\t1\nbad \xff\xfe\t0\n");
    EXPECT_ERROR_CONTAINS(read_dataset(dir / "u.tsv"), "u.tsv:3", "invalid UTF-8");
    write_bytes(dir / "u.jsonl", "{\"text\":\"bad \xc3\x28\",\"label\":\"a\"}\n");
    EXPECT_ERROR_CONTAINS(read_dataset(dir / "u.jsonl"), "u.jsonl:1", "invalid UTF-8");
    write_bytes(dir / "e.jsonl", "\n\n");
    EXPECT_ERROR_CONTAINS(read_dataset(dir / "e.jsonl"), "e.jsonl", "dataset is empty");
}

TEST(Dataset, LabelsMapThroughTheModelOrByIndex) {
    TempDir dir;
    write_bytes(dir / "d.jsonl", "{\"text\":\"a\",\"label\":\"pos\"}\n{\"text\":\"b\",\"label\":1}\n");
    auto data = read_dataset(dir / "d.jsonl");
    EXPECT_EQ(map_labels(data, {"neg", "pos"}), (std::vector<std::int64_t>{1, 1}));
    write_bytes(dir / "x.jsonl", "{\"text\":\"a\",\"label\":\"pos\"}\n{\"text\":\"b\",\"label\":\"meh\"}\n");
    EXPECT_ERROR_CONTAINS(map_labels(read_dataset(dir / "x.jsonl"), {"neg", "pos"}), "x.jsonl:2",
                          "label 'meh' is not one the model knows (neg, pos)");
}

TEST(Batching, SortedBatchesGroupSimilarLengths) {
    std::vector<text::Encoding> encodings(7);
    const std::size_t lengths[] = {5, 1, 9, 3, 5, 2, 8};
    for (std::size_t i = 0; i < 7; ++i)
        encodings[i].ids.assign(lengths[i], 1);
    auto batches = make_batches(encodings, 3, true);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[0], (std::vector<std::size_t>{1, 5, 3}));
    EXPECT_EQ(batches[1], (std::vector<std::size_t>{0, 4, 6})); // stable for ties
    EXPECT_EQ(make_batches(encodings, 3, false)[0], (std::vector<std::size_t>{0, 1, 2}));
}
