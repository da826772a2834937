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
