// The mt_bench format (see conversation_records.h): MT-Bench / Vicuna questions, whose user turns
// become prompts-only conversations, or full conversations when a FastChat answers file
// (question_id, choices[0].turns) has answers for them.
#include <fmt/format.h>

#include "models/error.h"
#include "trainer/data/conversation_records.h"
#include "trainer/data/record_fields.h"
#include "trainer/data/record_reader.h"

namespace mt {

using json = nlohmann::json;

MtBenchAnswers read_mt_bench_answers(const DataSourceConfig& c) {
  MtBenchAnswers answers;
  DataSourceConfig ac = c;
  ac.on_malformed = "fail";  // a bad answers file is never silently half-used
  DataStats unused;
  Policy policy(ac, &unused);
  for_each_record(c.answers_path, ac, policy, unused, [&](const json& obj, const std::string& where) {
    auto qid = obj.find("question_id");
    if (qid == obj.end() || !qid->is_number_integer())
      throw Error(fmt::format("{}: field 'question_id' must be an integer", where));
    const json& choices = get_array(obj, "choices", where);
    if (choices.empty() || !choices[0].is_object())
      throw Error(fmt::format("{}: field 'choices' must hold at least one object", where));
    const json& turns = get_array(choices[0], "turns", where + " choices[0]");
    std::vector<std::string> t;
    for (size_t k = 0; k < turns.size(); ++k) {
      if (!turns[k].is_string())
        throw Error(fmt::format("{}: choices[0].turns[{}] must be a string, got {}", where, k, json_type(turns[k])));
      t.push_back(turns[k].get<std::string>());
    }
    answers[qid->get<int64_t>()] = std::move(t);
  });
  return answers;
}

void read_mt_bench_record(const DataSourceConfig& c, const MtBenchAnswers& answers, const json& obj,
                          const std::string& where, const EmitFn& emit) {
  const json& turns = get_array(obj, c.turns_field, where);
  if (turns.empty()) throw Error(fmt::format("{}: field '{}' is an empty list", where, c.turns_field));
  const std::vector<std::string>* answer = nullptr;
  if (!answers.empty()) {
    auto qid = obj.find("question_id");
    if (qid == obj.end() || !qid->is_number_integer())
      throw Error(fmt::format("{}: field 'question_id' must be an integer to join answers", where));
    auto it = answers.find(qid->get<int64_t>());
    if (it != answers.end()) {
      if (it->second.size() != turns.size())
        throw Error(fmt::format("{}: {} has {} answer turns for this question's {} turns", where,
                                c.answers_path.string(), it->second.size(), turns.size()));
      answer = &it->second;
    }
  }
  Conversation conv;
  conv.where = where;
  if (!c.system_prompt.empty()) conv.messages.push_back({"system", c.system_prompt});
  for (size_t k = 0; k < turns.size(); ++k) {
    if (!turns[k].is_string())
      throw Error(fmt::format("{}: {}[{}] must be a string, got {}", where, c.turns_field, k, json_type(turns[k])));
    conv.messages.push_back({"user", turns[k].get<std::string>()});
    if (answer) conv.messages.push_back({"assistant", (*answer)[k]});
  }
  conv.prompts_only = answer == nullptr;
  emit(std::move(conv));
}

}  // namespace mt
