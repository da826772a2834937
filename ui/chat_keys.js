// The chat box sends on Enter and adds a line on Shift+Enter, as every chat app does.
// Gradio's multi-line Textbox does the opposite; this listener runs first (capture phase on
// window) and keeps Gradio's own handler from seeing Enter in #message.
(() => {
  const inMessageBox = (event) =>
    event.target instanceof HTMLTextAreaElement && event.target.closest("#message") !== null;
  const onKey = (event) => {
    if (event.key !== "Enter" || event.isComposing || !inMessageBox(event)) return;
    event.stopImmediatePropagation();
    if (event.shiftKey) return; // the browser inserts the newline
    event.preventDefault();
    if (event.type !== "keydown") return;
    const send = document.querySelector("#send");
    if (send && send.offsetParent !== null) send.click();
  };
  window.addEventListener("keydown", onKey, true);
  window.addEventListener("keypress", onKey, true);
})();

// Send and Stop swap the moment a turn is sent and when its event ends (ui/chat/wiring.py calls
// these from each turn event's js), not by the server's updates. A count, not a flag: a turn
// the chatbot's own retry or edit started while another ran ends on its own.
(() => {
  let turns = 0;
  const show = () => document.body.classList.toggle("hearth-turn-busy", turns > 0);
  window.hearthTurnStarts = () => {
    turns += 1;
    show();
  };
  window.hearthTurnEnds = () => {
    turns = Math.max(0, turns - 1);
    show();
  };
})();
