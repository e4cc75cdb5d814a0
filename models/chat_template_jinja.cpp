// The Jinja text of each chat template, as an exported model directory carries it (see
// chat_template.h). LLaMA-3, LLaMA-2 and ChatML are the families' official HF templates, verbatim;
// they render what render_chat renders. Mistral and Alpaca are written to render exactly our
// rendering: mistral-common's (Mistral's reference, which the official HF templates follow except
// for empty messages and the system prompt's place), and the Alpaca prompt, which has no HF
// template. A Mistral message is encoded on its own by mistral-common, with SentencePiece's dummy
// prefix; the template writes that prefix as a space (none for an empty message), which HF's
// Metaspace turns into the same "▁" whichever its prepend scheme.
// tests/test_export_chat.cpp checks, through transformers, that apply_chat_template gives
// render_chat's ids for every template.
#include <fmt/format.h>

#include "models/chat_template.h"
#include "models/error.h"

namespace mt {

namespace {

// meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json
const char* const kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

// meta-llama/Llama-2-7b-chat-hf tokenizer_config.json
const char* const kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// Qwen/Qwen2-7B-Instruct tokenizer_config.json
const char* const kChatml =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// Mistral, both vocabularies: the optional system message, roles alternating from user, BOS.
const char* const kMistralHead =
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set system_message = '' %}"
    "{%- set loop_messages = messages %}{%- endif %}"
    "{%- set ns = namespace(last_user=-1) %}{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{%- endif %}";
const char* const kMistralTail =
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an "
    "initial optional system message!') }}{%- endif %}{%- endfor %}";

// v1 vocabulary (Mistral-7B-Instruct v0.1/v0.2): "[INST] {user} [/INST]" as text, the system
// prompt (when not empty) before the first user message.
const char* const kMistralV1Body =
    "{%- if message['role'] == 'user' %}{%- if loop.first and system_message %}"
    "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{%- if message['content'] %}{{- ' ' + message['content'] }}"
    "{%- endif %}{{- eos_token }}";

// v3 vocabulary ([INST]/[/INST] control tokens): the system prompt before the last user message,
// answers without trailing spaces.
const char* const kMistralV3Body =
    "{%- if message['role'] == 'user' %}{%- if loop.index0 == ns.last_user and system_message %}"
    "{%- set content = system_message + '\\n\\n' + message['content'] %}"
    "{%- else %}{%- set content = message['content'] %}{%- endif %}"
    "{{- '[INST]' }}{%- if content %}{{- ' ' + content }}{%- endif %}{{- '[/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}{%- set content = message['content'].rstrip(' ') %}"
    "{%- if content %}{{- ' ' + content }}{%- endif %}{{- eos_token }}";

// Stanford Alpaca's prompt: [system] user (instruction) [user (input)] [assistant], BOS when the
// tokenizer has one, EOS after the response; the generation prompt is the prompt itself.
const char* const kAlpaca =
    "{%- set ns = namespace(system=none, instruction=none, input=none, response=none) %}"
    "{%- for message in messages %}"
    "{%- if loop.first and message['role'] == 'system' %}{%- set ns.system = message['content'] %}"
    "{%- elif message['role'] == 'user' and ns.instruction is none %}{%- set ns.instruction = message['content'] %}"
    "{%- elif message['role'] == 'user' and ns.input is none and ns.response is none %}"
    "{%- set ns.input = message['content'] %}"
    "{%- elif message['role'] == 'assistant' and ns.instruction is not none and ns.response is none %}"
    "{%- set ns.response = message['content'] %}"
    "{%- else %}{{- raise_exception('The Alpaca prompt takes [system], user (instruction), [user (input)], "
    "[assistant] only') }}{%- endif %}{%- endfor %}"
    "{%- if ns.instruction is none %}{{- raise_exception('The Alpaca prompt needs a user message (the "
    "instruction)') }}{%- endif %}"
    "{%- if ns.system is not none %}{%- set preamble = ns.system %}"
    "{%- elif ns.input %}{%- set preamble = 'Below is an instruction that describes a task, paired with an input "
    "that provides further context. Write a response that appropriately completes the request.' %}"
    "{%- else %}{%- set preamble = 'Below is an instruction that describes a task. Write a response that "
    "appropriately completes the request.' %}{%- endif %}"
    "{%- if bos_token %}{{- bos_token }}{%- endif %}"
    "{{- preamble + '\\n\\n### Instruction:\\n' + ns.instruction }}"
    "{%- if ns.input %}{{- '\\n\\n### Input:\\n' + ns.input }}{%- endif %}"
    "{{- '\\n\\n### Response:\\n' }}"
    "{%- if ns.response is not none %}{{- ns.response + eos_token }}{%- endif %}";

}  // namespace

std::string chat_template_jinja(const Tokenizer& tok, const std::string& template_name) {
  const std::string& t = template_name;
  if (t == "llama3") return kLlama3;
  if (t == "llama2") return kLlama2;
  if (t == "chatml") return kChatml;
  if (t == "alpaca") return kAlpaca;
  if (t == "mistral") {
    const char* body = has_inst_control_tokens(tok) ? kMistralV3Body : kMistralV1Body;
    return std::string(kMistralHead) + body + kMistralTail;
  }
  throw Error(fmt::format("no Jinja text for chat template '{}'", t));
}

}  // namespace mt
