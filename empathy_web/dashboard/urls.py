from django.urls import path

from . import actions, prometheus, requeue, values, views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("signals/", views.signals, name="signals"),
    path("signals/send/", actions.send_signal, name="send_signal"),
    path("signals/<str:signal_id>/", values.signal_value, name="signal_value"),
    path("tasks/", views.tasks, name="tasks"),
    path("tasks/add/", actions.add_task, name="add_task"),
    path("tasks/<str:team_id>/<str:task_id>/", values.task_value, name="task_value"),
    path(
        "tasks/<str:team_id>/<str:task_id>/<str:action>/",
        actions.task_action,
        name="task_action",
    ),
    path("dead-letters/<str:team_id>/requeue/", requeue.requeue_dead, name="requeue_dead"),
    path("agents/", views.agents, name="agents"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/<str:session_id>/", views.session_detail, name="session_detail"),
    path("sessions/<str:session_id>/value/", values.session_value, name="session_value"),
    path("sessions/<str:session_id>/share/", actions.share, name="share"),
    path("sessions/<str:session_id>/delete/", actions.delete_session, name="delete_session"),
    path("memory/", views.working_memory, name="working_memory"),
    path("memory/<str:agent_id>/value/", values.memory_value, name="memory_value"),
    path("memory/<str:agent_id>/clear/", actions.clear_memory, name="clear_memory"),
    path("live/", views.live_poll, name="live_poll"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", prometheus.metrics, name="metrics"),
    path("readyz", views.readyz, name="readyz"),
]
