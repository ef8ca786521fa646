// Runs before the page paints: the stylesheet can then tell a page with JavaScript (save
// buttons hidden until a rule changes, the live indicator) from one without, and the theme
// this browser chose (light, dark, or the system's) applies before anything is drawn.
(function () {
  "use strict";
  const KEY = "vigil-theme";
  const root = document.documentElement;
  root.classList.add("js");

  function stored() {
    try {
      const value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : "system";
    } catch (error) {
      return "system"; // storage refused (private mode, a policy): follow the system
    }
  }

  function apply(theme) {
    if (theme === "system") delete root.dataset.theme;
    else root.dataset.theme = theme;
  }

  apply(stored());

  document.addEventListener("DOMContentLoaded", () => {
    const select = document.getElementById("theme");
    if (!select) return;
    select.value = stored();
    select.addEventListener("change", () => {
      const theme = select.value;
      try {
        if (theme === "system") window.localStorage.removeItem(KEY);
        else window.localStorage.setItem(KEY, theme);
      } catch (error) {
        // not remembered, but still applied to this page
      }
      apply(theme);
      document.dispatchEvent(new CustomEvent("vigil:theme"));
    });
  });
})();
