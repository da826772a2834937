"""--engine auto serves from Ollama when it answers, else from the embedded engine, and says why."""

from backend.chat.turns import TurnSettings
from backend.engines.base import ChatDelta, ChatMessage, ChatOptions
from backend.services import choose_engine
from backend.settings import Settings
from tests.support.chat_service import chat_service


def test_auto_uses_ollama_when_it_answers(ollama_server, tmp_path):
    choice = choose_engine(Settings(ollama_host=ollama_server.url, data_dir=tmp_path))
    assert choice.engine.name == "ollama"
    assert ollama_server.url in choice.reason


def test_auto_falls_back_to_embedded_and_says_why(refused_ollama_host, tmp_path):
    choice = choose_engine(Settings(ollama_host=refused_ollama_host, data_dir=tmp_path))
    assert choice.engine.name == "embedded"
    assert "not reachable" in choice.reason and refused_ollama_host in choice.reason


def test_forced_ollama_is_kept_even_when_down(refused_ollama_host, tmp_path):
    choice = choose_engine(
        Settings(ollama_host=refused_ollama_host, engine="ollama", data_dir=tmp_path)
    )
    assert choice.engine.name == "ollama"
    assert not choice.engine.status().reachable


def test_a_turn_through_ollama_is_saved_with_ollamas_metrics(
    ollama_server, ollama_generator, store, alice, tmp_path
):
    engine = choose_engine(Settings(ollama_host=ollama_server.url, data_dir=tmp_path)).engine
    options = ChatOptions(temperature=0.0, num_ctx=2048, seed=1, num_predict=24)
    settings = TurnSettings("smollm2:135m", "You are a helpful assistant.", options)
    question = "What is the capital of France?"
    events = list(chat_service(store, engine, tmp_path).send(alice, None, question, settings))
    reply = events[-1].reply
    # Greedy text differs between CPUs, but not between two paths on one machine: the reply
    # through Ollama's protocol is what the generating engine says when called directly.
    direct = ollama_generator.chat(
        "smollm2:135m",
        [ChatMessage("system", settings.system_prompt), ChatMessage("user", question)],
        options,
    )
    expected = "".join(item.text for item in direct if isinstance(item, ChatDelta))
    assert expected
    assert "".join(e.text for e in events if isinstance(e, ChatDelta)) == expected
    assert reply.content == expected
    assert reply.status == "complete"
    assert reply.tokens_in > 0 and reply.tokens_out > 0 and reply.tokens_per_s > 0


def test_a_turn_with_ollama_down_is_saved_as_a_readable_error(refused_ollama_host, store, alice,
                                                              tmp_path):  # fmt: skip
    engine = choose_engine(
        Settings(ollama_host=refused_ollama_host, engine="ollama", data_dir=tmp_path)
    ).engine
    events = list(chat_service(store, engine, tmp_path).send(
        alice, None, "Hello?", TurnSettings("smollm2:135m")))  # fmt: skip
    reply = events[-1].reply
    assert reply.status == "error"
    assert "not reachable" in reply.error


def test_each_engine_names_the_folder_it_downloads_to(ollama_server, refused_ollama_host, tmp_path):
    embedded = choose_engine(Settings(ollama_host=refused_ollama_host, data_dir=tmp_path))
    assert embedded.model_store.path == tmp_path / "models"
    moved = tmp_path / "ollama-models"
    ollama = choose_engine(
        Settings(ollama_host=ollama_server.url, data_dir=tmp_path, ollama_models=moved)
    )
    assert ollama.engine.name == "ollama"
    assert ollama.model_store.path == moved  # the test server listens on 127.0.0.1
