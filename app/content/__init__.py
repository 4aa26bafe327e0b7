"""User-written content made safe to show: Markdown rendered to sanitised HTML, cover images checked and re-encoded."""
