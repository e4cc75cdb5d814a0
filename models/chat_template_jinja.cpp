// The Jinja text of each chat template, as an exported model directory carries it (see
// chat_template.h). LLaMA-3, Llama 3.1, LLaMA-2, ChatML (Qwen2) and Qwen2.5 are the families'
// official HF templates, verbatim (tests/fixtures/tokenizer/official_chat_templates.json holds the
// same texts, from scripts/make_chat_vectors.py); they render what render_chat renders. Mistral and Alpaca are written to render exactly our
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

// meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json, as its JSON string decodes. Without tools
// (render_chat has none) it writes the system header with date_string's default, kLlama31Date.
const char* const kLlama31 = R"JINJA({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)JINJA";

// Qwen/Qwen2.5-7B-Instruct tokenizer_config.json, as its JSON string decodes. Without tools it is
// Qwen2's ChatML with "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." as the
// default system message.
const char* const kQwen25 = R"JINJA({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)JINJA";

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
  if (t == "llama3.1") return kLlama31;
  if (t == "llama2") return kLlama2;
  if (t == "chatml") return kChatml;
  if (t == "qwen2.5") return kQwen25;
  if (t == "alpaca") return kAlpaca;
  if (t == "mistral") {
    const char* body = has_inst_control_tokens(tok) ? kMistralV3Body : kMistralV1Body;
    return std::string(kMistralHead) + body + kMistralTail;
  }
  throw Error(fmt::format("no Jinja text for chat template '{}'", t));
}

}  // namespace mt
