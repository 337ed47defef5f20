// UI text in Russian and English; the language follows navigator.language until the user switches it.

const LANG_KEY = "neira.lang";
export const LANGS = ["ru", "en"];

const STRINGS = {
  en: {
    "nav.label": "Main",
    "nav.chat": "Chat",
    "nav.organs": "Organs",
    "lang.label": "Language",
    "login.title": "Sign in",
    "login.how": "Open the sign-in link that “neira serve” printed when it started. A link works once, for 10 minutes.",
    "login.new": "For a new link, run this next to the server:",
    "login.retry": "Check again",
    "login.ended": "Your session has ended. Open a new sign-in link.",
    "logout": "Sign out",
    "error.network": "The server cannot be reached.",
    "error.generic": "Something went wrong.",
    "live.on": "Live",
    "live.connecting": "Connecting…",
    "live.off": "Reconnecting…",
    "state.draft": "draft",
    "state.canary": "canary",
    "state.experimental": "experimental",
    "state.stable": "stable",
    "state.failed": "failed",
    "state.disabled": "disabled",
    "state.rolled_back": "rolled back",
    "state.deprecated": "deprecated",
    "state.healing": "healing",
    "state.locked": "locked",
    "state.enabled": "enabled",
    "state.unknown": "unknown",
    "chat.title": "neira — chat",
    "chat.heading": "Chat",
    "chat.log": "Conversation",
    "chat.input": "Command",
    "chat.placeholder": "Type a command…",
    "chat.send": "Send",
    "chat.hint": "Enter sends · Shift+Enter breaks a line · ↑ recalls the last command",
    "chat.welcome": "Tell me what to grow. Try one of these:",
    "chat.you": "You",
    "chat.neira": "neira",
    "chat.thinking": "Thinking…",
    "chat.new": "New session",
    "chat.session": "Session {id}",
    "plan.label": "Plan",
    "plan.changes": "Changes and reasons",
    "plan.violations": "Policy violations",
    "plan.denied": "Policy does not allow this plan.",
    "plan.apply": "Apply",
    "plan.discard": "Discard",
    "plan.applying": "Applying…",
    "plan.applied": "Applied",
    "plan.discarded": "Discarded",
    "plan.nothing": "Nothing to build.",
    "reply.suggestions": "Did you mean:",
    "reply.expected": "Expected: {words}",
    "reply.position": "at position {pos}",
    "organ.progress": "Build of {id}",
    "organ.open": "Open in the organs panel",
    "organ.failed": "The build failed.",
    "organ.stable": "The organ is stable.",
    "panel.title": "neira — organs",
    "panel.heading": "Organs panel",
    "panel.safe": "Safe mode is on: only the admin may make changes.",
    "panel.safe.reason": "Reason: {reason}",
    "organs.heading": "Organs",
    "organs.empty": "No organs yet. Build one from the chat.",
    "organs.gate": "The organ builder gate (organs_builder) is {state}: organs cannot be listed or built.",
    "col.id": "ID",
    "col.template": "Template",
    "col.state": "State",
    "col.progress": "Stages",
    "col.updated": "Updated",
    "col.actions": "Actions",
    "col.version": "Version",
    "act.status": "Status",
    "act.hide": "Hide",
    "act.cancel": "Cancel build",
    "act.rebuild": "Rebuild",
    "act.approve": "Approve",
    "act.disable": "Disable",
    "act.rollback": "Roll back",
    "act.refresh": "Refresh",
    "status.cells": "Cells",
    "status.timeline": "Stage timings",
    "status.notimings": "No stage timings yet.",
    "status.after": "reached after {time}",
    "status.metrics": "Metrics",
    "cells.heading": "Cell records",
    "cells.empty": "No cell records yet.",
    "caps.heading": "Capability gates",
    "caps.empty": "No gates reported.",
    "templates.heading": "Organ templates",
    "templates.empty": "The catalog has no organ templates.",
    "templates.more": "More templates are in the catalog than shown here.",
    "col.cells": "Cells",
    "col.description": "Description",
    "activity.heading": "Activity",
    "activity.view": "Show",
    "activity.events": "Events",
    "activity.audit": "Audit",
    "activity.type": "Type",
    "activity.subject": "Subject",
    "activity.alltypes": "all types",
    "activity.bysubject": "Show only this subject",
    "activity.empty": "Nothing has happened yet.",
    "activity.nomatch": "Nothing matches the filter.",
    "activity.more": "Show more",
    "col.time": "Time",
    "col.type": "Type",
    "col.subject": "Subject",
    "col.detail": "Detail",
    "status.record": "Record {id}",
    "record.template": "Template",
    "record.backend": "Backend",
    "record.history": "History",
    "confirm.title": "Please confirm",
    "confirm.ok": "Yes, do it",
    "confirm.back": "Keep as is",
    "confirm.cancel": "Cancel the build of {id}? It will end in the failed state.",
    "confirm.rebuild": "Rebuild {id} from draft?",
    "confirm.disable": "Disable cell record {id}?",
    "confirm.rollback": "Roll back cell record {id}? The last stable version becomes active again.",
    "done.cancel": "Build of {id} cancelled.",
    "done.rebuild": "Rebuild of {id} started.",
    "done.approve": "{id} is now {state}.",
    "done.disable": "{id} is disabled.",
    "done.rollback": "{id} is rolled back.",
    "dismiss": "Dismiss",
  },
  ru: {
    "nav.label": "Основная навигация",
    "nav.chat": "Чат",
    "nav.organs": "Органы",
    "lang.label": "Язык",
    "login.title": "Вход",
    "login.how": "Откройте ссылку для входа, которую «neira serve» напечатал при запуске. Ссылка действует один раз, 10 минут.",
    "login.new": "Чтобы получить новую ссылку, выполните рядом с сервером:",
    "login.retry": "Проверить снова",
    "login.ended": "Сессия завершена. Откройте новую ссылку для входа.",
    "logout": "Выйти",
    "error.network": "Сервер недоступен.",
    "error.generic": "Что-то пошло не так.",
    "live.on": "В эфире",
    "live.connecting": "Подключение…",
    "live.off": "Переподключение…",
    "state.draft": "черновик",
    "state.canary": "канарейка",
    "state.experimental": "эксперимент",
    "state.stable": "стабильный",
    "state.failed": "сбой",
    "state.disabled": "отключён",
    "state.rolled_back": "откачен",
    "state.deprecated": "устарел",
    "state.healing": "лечение",
    "state.locked": "заблокирован",
    "state.enabled": "включён",
    "state.unknown": "неизвестно",
    "chat.title": "neira — чат",
    "chat.heading": "Чат",
    "chat.log": "Диалог",
    "chat.input": "Команда",
    "chat.placeholder": "Введите команду…",
    "chat.send": "Отправить",
    "chat.hint": "Enter — отправить · Shift+Enter — новая строка · ↑ — последняя команда",
    "chat.welcome": "Скажите, что вырастить. Например:",
    "chat.you": "Вы",
    "chat.neira": "neira",
    "chat.thinking": "Думаю…",
    "chat.new": "Новая сессия",
    "chat.session": "Сессия {id}",
    "plan.label": "План",
    "plan.changes": "Изменения и причины",
    "plan.violations": "Нарушения политик",
    "plan.denied": "Политики не разрешают этот план.",
    "plan.apply": "Применить",
    "plan.discard": "Отклонить",
    "plan.applying": "Применяю…",
    "plan.applied": "Применён",
    "plan.discarded": "Отклонён",
    "plan.nothing": "Собирать нечего.",
    "reply.suggestions": "Возможно, вы имели в виду:",
    "reply.expected": "Ожидалось: {words}",
    "reply.position": "в позиции {pos}",
    "organ.progress": "Сборка {id}",
    "organ.open": "Открыть в панели органов",
    "organ.failed": "Сборка завершилась сбоем.",
    "organ.stable": "Орган стабилен.",
    "panel.title": "neira — органы",
    "panel.heading": "Панель органов",
    "panel.safe": "Включён безопасный режим: изменения может вносить только администратор.",
    "panel.safe.reason": "Причина: {reason}",
    "organs.heading": "Органы",
    "organs.empty": "Органов пока нет. Соберите первый в чате.",
    "organs.gate": "Гейт сборщика органов (organs_builder) в состоянии «{state}»: органы недоступны.",
    "col.id": "ID",
    "col.template": "Шаблон",
    "col.state": "Состояние",
    "col.progress": "Стадии",
    "col.updated": "Обновлён",
    "col.actions": "Действия",
    "col.version": "Версия",
    "act.status": "Статус",
    "act.hide": "Скрыть",
    "act.cancel": "Отменить сборку",
    "act.rebuild": "Пересобрать",
    "act.approve": "Одобрить",
    "act.disable": "Отключить",
    "act.rollback": "Откатить",
    "act.refresh": "Обновить",
    "status.cells": "Клетки",
    "status.timeline": "Время стадий",
    "status.notimings": "Времени стадий пока нет.",
    "status.after": "через {time} от начала",
    "status.metrics": "Метрики",
    "cells.heading": "Записи клеток",
    "cells.empty": "Записей клеток пока нет.",
    "caps.heading": "Гейты возможностей",
    "caps.empty": "Гейтов нет.",
    "templates.heading": "Шаблоны органов",
    "templates.empty": "В каталоге нет шаблонов органов.",
    "templates.more": "В каталоге есть ещё шаблоны, здесь показаны не все.",
    "col.cells": "Клетки",
    "col.description": "Описание",
    "activity.heading": "Активность",
    "activity.view": "Показать",
    "activity.events": "События",
    "activity.audit": "Аудит",
    "activity.type": "Тип",
    "activity.subject": "Объект",
    "activity.alltypes": "все типы",
    "activity.bysubject": "Показать только этот объект",
    "activity.empty": "Пока ничего не произошло.",
    "activity.nomatch": "Под фильтр ничего не подходит.",
    "activity.more": "Показать ещё",
    "col.time": "Время",
    "col.type": "Тип",
    "col.subject": "Объект",
    "col.detail": "Подробности",
    "status.record": "Запись {id}",
    "record.template": "Шаблон",
    "record.backend": "Бэкенд",
    "record.history": "История",
    "confirm.title": "Подтвердите",
    "confirm.ok": "Да, выполнить",
    "confirm.back": "Оставить как есть",
    "confirm.cancel": "Отменить сборку {id}? Орган перейдёт в состояние «сбой».",
    "confirm.rebuild": "Пересобрать {id} с черновика?",
    "confirm.disable": "Отключить запись клетки {id}?",
    "confirm.rollback": "Откатить запись клетки {id}? Последняя стабильная версия снова станет активной.",
    "done.cancel": "Сборка {id} отменена.",
    "done.rebuild": "Пересборка {id} запущена.",
    "done.approve": "{id} теперь в состоянии «{state}».",
    "done.disable": "{id} отключена.",
    "done.rollback": "{id} откачена.",
    "dismiss": "Закрыть",
  },
};

/** The language in use: the user's choice, else the browser's, else English. */
export function currentLang() {
  const stored = localStorage.getItem(LANG_KEY);
  if (LANGS.includes(stored)) return stored;
  const browser = (navigator.language || "en").toLowerCase();
  return browser.startsWith("ru") ? "ru" : "en";
}

/** Translate a key, filling `{name}` placeholders from vars. */
export function t(key, vars = {}) {
  const table = STRINGS[currentLang()];
  const text = table[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Follow the language a reply came in (`lang` of a command's answer): the UI switches with the user. */
export function followLang(lang) {
  if (LANGS.includes(lang) && lang !== currentLang()) setLang(lang);
}

/** Localised name of a lifecycle state; unknown states are shown as they are. */
export function stateLabel(state) {
  const key = `state.${state}`;
  const text = t(key);
  return text === key ? String(state ?? "") : text;
}

/** Fill every element marked with data-i18n* attributes under root. */
export function applyI18n(root = document) {
  document.documentElement.lang = currentLang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  const title = document.querySelector("title[data-i18n-title]");
  if (title) document.title = t(title.dataset.i18nTitle);
}

/** Switch the language, remember it, and tell the page to re-render. */
export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  localStorage.setItem(LANG_KEY, lang);
  applyI18n();
  document.dispatchEvent(new CustomEvent("langchange", { detail: { lang } }));
}

/** Turn a group of buttons with data-lang into a pressed-state language switch. */
export function mountLangSwitch(group) {
  const sync = () => {
    for (const btn of group.querySelectorAll("button[data-lang]")) {
      btn.setAttribute("aria-pressed", String(btn.dataset.lang === currentLang()));
    }
  };
  group.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-lang]");
    if (btn) setLang(btn.dataset.lang);
  });
  document.addEventListener("langchange", sync);
  sync();
}
