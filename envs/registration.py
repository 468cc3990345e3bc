"""Registration of the RecWorld environment ids (string entry points: registry, not imports)."""

from __future__ import annotations

ENV_IDS = ("RecWorld/Feed-v0", "RecWorld/Platform-v0", "RecWorld/Conversation-v0")


def register_all() -> None:
    """Register every RecWorld env id with Gymnasium (idempotent)."""
    from gymnasium.envs.registration import register, registry

    if "RecWorld/Feed-v0" not in registry:
        register(
            id="RecWorld/Feed-v0",
            entry_point="recworld.envs.feed:FeedEnv",
            vector_entry_point="recworld.envs.feed_vector:FeedVectorEnv",
            max_episode_steps=200,
        )
    if "RecWorld/Conversation-v0" not in registry:
        register(
            id="RecWorld/Conversation-v0",
            entry_point="recworld.envs.conversation:ConversationEnv",
            vector_entry_point="recworld.envs.conversation_vector:ConversationVectorEnv",
            max_episode_steps=20,
        )
    if "RecWorld/Platform-v0" not in registry:
        register(
            id="RecWorld/Platform-v0",
            entry_point="recworld.envs.platform:PlatformEnv",
            max_episode_steps=168,
        )


__all__ = ["ENV_IDS", "register_all"]

# Importing this module registers the ids, so "recworld.envs.registration:RecWorld/Feed-v0" works as a
# Gymnasium "module:id" string from any package without a static import of `envs`.
register_all()
