from pathlib import Path

import pytest

from backend.settings import DEFAULT_OLLAMA_HOST, Settings, SettingsError, from_env


def test_defaults_without_environment():
    settings = from_env({})
    assert settings.port == 7860
    assert settings.engine == "auto"
    assert settings.ollama_host == DEFAULT_OLLAMA_HOST
    assert settings.models_path == Path("data") / "models"


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("https://ollama.example.org", "https://ollama.example.org:11434"),
        ("http://10.1.2.3:11434/", "http://10.1.2.3:11434"),
    ],
)
def test_ollama_host_accepts_what_ollama_accepts(raw, url):
    assert from_env({"OLLAMA_HOST": raw}).ollama_host == url


def test_environment_variables_set_every_field():
    settings = from_env(
        {
            "HEARTH_HOST": "0.0.0.0",
            "HEARTH_PORT": "9000",
            "HEARTH_ENGINE": "embedded",
            "HEARTH_DATA_DIR": "/srv/hearth",
            "HEARTH_MODEL_DIR": "/srv/models",
            "HEARTH_SAMPLE_INTERVAL_S": "5",
        }
    )
    assert (settings.host, settings.port, settings.engine) == ("0.0.0.0", 9000, "embedded")
    assert settings.db_path == Path("/srv/hearth/hearth.db")
    assert settings.models_path == Path("/srv/models")
    assert settings.sample_interval_s == 5.0


def test_cli_overrides_environment_but_none_keeps_it():
    settings = from_env({"HEARTH_PORT": "9000"}).with_overrides(port=None, engine="ollama")
    assert settings.port == 9000
    assert settings.engine == "ollama"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HEARTH_PORT": "eighty"}, "port must be a number"),
        ({"HEARTH_PORT": "70000"}, "between 1 and 65535"),
        ({"HEARTH_ENGINE": "vllm"}, "engine must be one of"),
        ({"HEARTH_SAMPLE_INTERVAL_S": "0"}, "must be positive"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        from_env(env)


def test_unknown_override_is_refused():
    with pytest.raises(SettingsError, match="Unknown setting"):
        Settings().with_overrides(colour="red")


def test_the_fair_line_defaults_to_one_slot_and_a_full_line_of_64():
    settings = from_env({})
    assert settings.line_slots == 1
    assert (settings.per_user_in_flight, settings.max_waiting, settings.max_waiting_per_user) == (
        1, 64, 4
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "slots"),
    [
        ({"OLLAMA_NUM_PARALLEL": "4"}, 4),  # Ollama's own setting, when Hearth has none
        ({"OLLAMA_NUM_PARALLEL": "4", "HEARTH_ENGINE_SLOTS": "2"}, 2),  # Hearth's wins
        ({"OLLAMA_NUM_PARALLEL": "0"}, 1),  # Ollama's "choose for me": assume its default
        ({"HEARTH_ENGINE_SLOTS": "3"}, 3),
    ],
)
def test_engine_slots_come_from_hearth_then_ollamas_variable(env, slots):
    assert from_env(env).line_slots == slots


def test_the_fair_line_settings_are_read_from_the_environment():
    settings = from_env(
        {"HEARTH_PER_USER_IN_FLIGHT": "2", "HEARTH_MAX_WAITING": "0",
         "HEARTH_MAX_WAITING_PER_USER": "10"}
    )  # fmt: skip
    assert (settings.per_user_in_flight, settings.max_waiting, settings.max_waiting_per_user) == (
        2, 0, 10
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HEARTH_ENGINE_SLOTS": "0"}, "engine_slots must be a whole number of at least 1"),
        ({"HEARTH_ENGINE_SLOTS": "two"}, "engine_slots must be a number"),
        ({"HEARTH_PER_USER_IN_FLIGHT": "0"}, "per_user_in_flight must be a whole number"),
        ({"HEARTH_MAX_WAITING": "-1"}, "max_waiting must be a whole number of at least 0"),
        ({"HEARTH_MAX_WAITING_PER_USER": "1.5"}, "max_waiting_per_user must be a number"),
    ],
)
def test_bad_fair_line_settings_name_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        from_env(env)
