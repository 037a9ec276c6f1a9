// Measures a loaded edge report in the browser; the value is returned to the test as JSON.
(() => {
  const page = document.documentElement;
  const rect = (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  };
  const labelsOutside = [];
  let labels = 0;
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      labels += 1;
      const r = text.getBoundingClientRect();
      const slack = 0.5;
      if (r.left < box.left - slack || r.right > box.right + slack ||
          r.top < box.top - slack || r.bottom > box.bottom + slack) {
        labelsOutside.push({
          text: text.textContent, label: rect(text), svg: rect(svg),
          chart: svg.getAttribute("aria-label"),
        });
      }
    }
  }
  // Elements wider than the page (what makes a phone scroll sideways), innermost first.
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right > page.clientWidth + 0.5 && !el.closest(".table-wrap")) {
      wide.push(el.tagName + (el.className ? "." + el.className : "") + " " + Math.round(r.right));
    }
  }
  const summary = document.getElementById("summary");
  const banner = document.querySelector(".banner");
  return {
    innerWidth: window.innerWidth,
    clientWidth: page.clientWidth,
    scrollWidth: page.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    wide: wide.slice(0, 10),
    charts: document.querySelectorAll("svg").length,
    labels,
    labelsOutside,
    summaryText: summary ? summary.innerText : "",
    summaryVisible: summary ? visible(summary) : false,
    bannerText: banner ? banner.innerText : "",
    failureItems: [...document.querySelectorAll("#summary ol.problems li")]
      .filter(visible).map((li) => li.innerText),
    tablesScrollInside: [...document.querySelectorAll("table")]
      .every((t) => t.parentElement.classList.contains("table-wrap")),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")),
  };
})()
